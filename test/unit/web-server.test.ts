/**
 * The web console's server without a machine: where it listens, the token
 * on every request and WebSocket, and a WebSocket from another site's page
 * refused by its Origin.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import WebSocket from 'ws';
import { parseWebAddress } from '../../src/web/web-address.js';
import { WebServer } from '../../src/web/web-server.js';

test('[HOST:]PORT: loopback by default; any other address needs a token', () => {
  assert.deepEqual(parseWebAddress('8080', undefined), { host: '127.0.0.1', port: 8080, token: undefined });
  assert.deepEqual(parseWebAddress('[::1]:0', undefined), { host: '::1', port: 0, token: undefined });
  assert.deepEqual(parseWebAddress('0.0.0.0:80', 'long-enough'), { host: '0.0.0.0', port: 80, token: 'long-enough' });
  assert.throws(() => parseWebAddress('0.0.0.0:80', undefined), /give --web-token too/);
  assert.throws(() => parseWebAddress('70000', undefined), /give \[HOST:\]PORT/);
  assert.throws(() => parseWebAddress('example.com:80', 'long-enough'), /example\.com is not an IP address/);
  assert.throws(() => parseWebAddress('80', 'short'), /at least 8 printable characters/);
});

/** Opens a WebSocket; resolves with 'open' or the error's message. */
function connect(url: string, headers: Record<string, string> = {}): Promise<string> {
  return new Promise((resolve) => {
    const socket = new WebSocket(url, { headers });
    socket.on('open', () => {
      socket.close();
      resolve('open');
    });
    socket.on('error', (e) => resolve(e.message));
  });
}

test('with a token, every request and the WebSocket need it: from the query, then the cookie it sets', async () => {
  const opened: unknown[] = [];
  const server = await WebServer.listen({ host: '127.0.0.1', port: 0, token: 'the-secret-token' }, (s) => opened.push(s));
  try {
    const url = new URL(server.url);
    const bare = `${url.origin}/`;
    assert.equal((await fetch(bare)).status, 403);
    assert.equal((await fetch(`${bare}?token=the-secret-tokeX`)).status, 403);
    const page = await fetch(url);
    assert.equal(page.status, 200);
    const cookie = page.headers.get('set-cookie')!.split(';')[0];
    assert.match(page.headers.get('set-cookie')!, /HttpOnly; SameSite=Strict/);
    assert.equal((await fetch(`${url.origin}/app.js`, { headers: { cookie } })).status, 200, 'the page\'s script, by the cookie');
    const ws = `ws://${url.host}/ws`;
    assert.match(await connect(ws), /403/);
    assert.equal(await connect(ws, { cookie }), 'open');
    assert.equal(opened.length, 1);
  } finally {
    await server.close();
  }
});

test('without a token (loopback), a WebSocket from another site\'s page is refused', async () => {
  const server = await WebServer.listen({ host: '127.0.0.1', port: 0 }, () => {});
  try {
    const { host } = new URL(server.url);
    assert.equal(await connect(`ws://${host}/ws`, { origin: `http://${host}` }), 'open');
    assert.match(await connect(`ws://${host}/ws`, { origin: 'http://evil.example' }), /403/);
    assert.match(await connect(`ws://${host}/other`), /403/);
    assert.equal((await fetch(`http://${host}/nothing-here`)).status, 404);
  } finally {
    await server.close();
  }
});
