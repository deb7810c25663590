/**
 * An independent, strict reader of "newc" cpio archives for tests: it
 * checks every rule of the format (magic, 8-digit hex fields, NUL-ended
 * names, 4-byte alignment of names and data, the TRAILER!!! entry) and
 * returns the entries with their raw header fields.
 */
import assert from 'node:assert/strict';

export interface NewcEntry {
  /** Byte offsets of the header and of the data in the archive. */
  offset: number;
  dataOffset: number;
  name: string;
  ino: number;
  mode: number;
  uid: number;
  gid: number;
  nlink: number;
  mtime: number;
  devMajor: number;
  devMinor: number;
  rdevMajor: number;
  rdevMinor: number;
  check: number;
  data: Uint8Array;
}

const FIELDS = ['ino', 'mode', 'uid', 'gid', 'nlink', 'mtime', 'fileSize', 'devMajor', 'devMinor', 'rdevMajor', 'rdevMinor', 'nameSize', 'check'] as const;

/** All entries before the trailer; fails on anything that breaks the format. */
export function readNewc(archive: Uint8Array): NewcEntry[] {
  const entries: NewcEntry[] = [];
  let at = 0;
  for (;;) {
    assert.ok(at + 110 <= archive.length, `header at ${at} runs past the end`);
    const header = Buffer.from(archive.subarray(at, at + 110)).toString('latin1');
    assert.equal(header.slice(0, 6), '070701', `magic at ${at}`);
    const field: Record<string, number> = {};
    FIELDS.forEach((name, i) => {
      const text = header.slice(6 + i * 8, 14 + i * 8);
      assert.match(text, /^[0-9a-fA-F]{8}$/, `${name} field at ${at} is not 8 hex digits`);
      field[name] = parseInt(text, 16);
    });
    const nameEnd = at + 110 + field.nameSize;
    assert.equal(archive[nameEnd - 1], 0, `name at ${at} is not NUL-terminated`);
    const name = Buffer.from(archive.subarray(at + 110, nameEnd - 1)).toString('utf8');
    assert.ok(!name.includes('\0'), `name at ${at} holds a NUL`);
    const dataStart = Math.ceil(nameEnd / 4) * 4;
    assert.ok(archive.subarray(nameEnd, dataStart).every((b) => b === 0), `name padding at ${at} is not zeros`);
    if (name === 'TRAILER!!!') {
      assert.ok(archive.subarray(dataStart).every((b) => b === 0), 'bytes other than zeros follow the trailer');
      return entries;
    }
    const dataEnd = dataStart + field.fileSize;
    assert.ok(dataEnd <= archive.length, `data of ${name} runs past the end`);
    const next = Math.ceil(dataEnd / 4) * 4;
    assert.ok(archive.subarray(dataEnd, next).every((b) => b === 0), `data padding of ${name} is not zeros`);
    entries.push({
      offset: at,
      dataOffset: dataStart,
      name,
      ino: field.ino,
      mode: field.mode,
      uid: field.uid,
      gid: field.gid,
      nlink: field.nlink,
      mtime: field.mtime,
      devMajor: field.devMajor,
      devMinor: field.devMinor,
      rdevMajor: field.rdevMajor,
      rdevMinor: field.rdevMinor,
      check: field.check,
      data: archive.subarray(dataStart, dataEnd),
    });
    at = next;
  }
}
