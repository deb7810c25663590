/**
 * The browser of the web console's tests: Debian's chromium, headless,
 * driven by playwright-core. Where the tests run on the host it is
 * launched here. In the rig it would be far too slow (every instruction
 * translated: a page took 155 s to load, measured), so the suite launches
 * it on the host as a Playwright browser server, and a test in the rig
 * connects to it through QEMU's user network; tsvmm's page in the rig is
 * served on RIG_WEB_PORT, which QEMU forwards to a port of the host's
 * loopback, where that browser loads it.
 */
import { createServer } from 'node:net';
import { chromium, type Browser, type BrowserServer } from 'playwright-core';
import { RIG_HOST_ADDRESS } from '../rig/rig-machine.js';

export const CHROMIUM = '/usr/bin/chromium';
/** The rig's port for the page under test: one test at a time serves it. */
export const RIG_WEB_PORT = 8090;
const LAUNCH_ARGS = ['--no-sandbox'];
/** Set in the rig's environment by the suite: the host's browser server, and where the host reaches RIG_WEB_PORT. */
const REMOTE_BROWSER = 'TSVMM_TEST_BROWSER';
const PAGE_HOST = 'TSVMM_TEST_PAGE_HOST';

export interface BrowserService {
  server: BrowserServer;
  /** What one rig needs to reach the browser and to have it load the rig's page: each rig gets a port of its own. */
  forRig(): Promise<{ env: Record<string, string>; forward: { hostPort: number; guestPort: number } }>;
}

/** For the suite, on the host: a browser server that the rigs' tests reach. */
export async function startBrowserService(): Promise<BrowserService> {
  const server = await chromium.launchServer({ executablePath: CHROMIUM, args: LAUNCH_ARGS, host: '127.0.0.1', port: 0 });
  const endpoint = new URL(server.wsEndpoint());
  endpoint.hostname = RIG_HOST_ADDRESS;
  return {
    server,
    forRig: async () => {
      const hostPort = await freePort();
      return { env: { [REMOTE_BROWSER]: endpoint.href, [PAGE_HOST]: `127.0.0.1:${hostPort}` }, forward: { hostPort, guestPort: RIG_WEB_PORT } };
    },
  };
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const probe = createServer().listen(0, '127.0.0.1', () => {
      const { port } = probe.address() as { port: number };
      probe.close(() => resolve(port));
    });
    probe.on('error', reject);
  });
}

export interface TestBrowser {
  browser: Browser;
  /** The --web flags for a page this browser can reach (with the token, when one is needed or given). */
  webFlags(token?: string): string[];
  /** The address this browser loads for the page tsvmm printed. */
  pageUrl(printed: string): string;
}

export async function openTestBrowser(): Promise<TestBrowser> {
  const remote = process.env[REMOTE_BROWSER];
  if (remote === undefined) {
    return {
      browser: await chromium.launch({ executablePath: CHROMIUM, args: LAUNCH_ARGS }),
      webFlags: (token) => ['--web', token === undefined ? '127.0.0.1:0' : `0.0.0.0:0`, ...(token === undefined ? [] : ['--web-token', token])],
      pageUrl: (printed) => printed,
    };
  }
  // The server takes only its own host name (it guards against DNS rebinding): say its loopback one.
  const endpoint = new URL(remote);
  return {
    browser: await chromium.connect(remote, { headers: { Host: `127.0.0.1:${endpoint.port}` } }),
    // Served on the rig's own address, which is not loopback: a token is needed.
    webFlags: (token = 'the-rig-test-token') => ['--web', `0.0.0.0:${RIG_WEB_PORT}`, '--web-token', token],
    pageUrl: (printed) => {
      const url = new URL(printed);
      url.host = process.env[PAGE_HOST]!;
      return url.href;
    },
  };
}
