import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  AVAIL_F_NO_INTERRUPT, DESC_F_INDIRECT, DESC_F_NEXT, DESC_F_WRITE, QueueError, SplitQueue, type QueueOptions,
} from '../../src/devices/virtio/queue.js';
import { GuestMemory } from '../../src/memory/guest-memory.js';
import { queueLayout, writeDescriptorAt, type Descriptor } from '../helpers/virtio-driver.js';

const RAM = 0x10000;
const SIZE = 8;
const layout = queueLayout(0x1000, SIZE);
const DATA = 0x8000;

function setUp(options: Partial<QueueOptions> = {}) {
  const memory = new GuestMemory([{ gpa: 0, bytes: new Uint8Array(RAM) }]);
  const queue = new SplitQueue(memory, { size: SIZE, desc: layout.desc, driver: layout.avail, device: layout.used }, { eventIdx: false, indirect: false, ...options });
  let availIdx = 0;
  return {
    memory,
    queue,
    desc: (index: number, d: Descriptor) => writeDescriptorAt(memory, layout.desc + 16 * index, d),
    offer(head: number) {
      memory.writeU16(layout.avail + 4 + 2 * (availIdx % SIZE), head);
      availIdx = (availIdx + 1) & 0xffff;
      memory.writeU16(layout.avail + 2, availIdx);
    },
  };
}

function queueError(fn: () => unknown, pattern: RegExp, what?: string): void {
  assert.throws(fn, (e: unknown) => e instanceof QueueError && pattern.test(e.message), what);
}

test('a chain splits into device-readable then device-writable buffers', () => {
  const q = setUp();
  q.desc(3, { addr: DATA, len: 16, flags: DESC_F_NEXT, next: 5 });
  q.desc(5, { addr: DATA + 16, len: 32, flags: DESC_F_NEXT | DESC_F_WRITE, next: 0 });
  q.desc(0, { addr: DATA + 48, len: 8, flags: DESC_F_WRITE, next: 0 });
  q.offer(3);
  assert.deepEqual(q.queue.pop(), {
    head: 3,
    readable: [{ addr: DATA, len: 16 }],
    writable: [{ addr: DATA + 16, len: 32 }, { addr: DATA + 48, len: 8 }],
  });
  assert.equal(q.queue.pop(), undefined, 'nothing more is available');
});

test('used entries go in the ring in order and the index publishes them', () => {
  const q = setUp();
  q.queue.push(3, 40);
  q.queue.push(1, 0);
  assert.equal(q.memory.readU16(layout.used + 2), 2);
  assert.deepEqual([q.memory.readU32(layout.used + 4), q.memory.readU32(layout.used + 8)], [3, 40]);
  assert.deepEqual([q.memory.readU32(layout.used + 12), q.memory.readU32(layout.used + 16)], [1, 0]);
});

test('ring indices wrap at 65536', () => {
  const q = setUp();
  q.desc(0, { addr: DATA, len: 4, flags: DESC_F_WRITE, next: 0 });
  for (let i = 0; i < 70000; i++) {
    q.offer(0);
    assert.equal(q.queue.pop()?.head, 0);
    q.queue.push(0, 4);
  }
  assert.equal(q.memory.readU16(layout.used + 2), 70000 & 0xffff);
  assert.equal(q.queue.usedIndex, 70000 & 0xffff);
});

test('an indirect table is followed when VIRTIO_F_INDIRECT_DESC was negotiated', () => {
  const q = setUp({ indirect: true });
  const table = 0x6000;
  writeDescriptorAt(q.memory, table, { addr: DATA, len: 8, flags: DESC_F_NEXT, next: 1 });
  writeDescriptorAt(q.memory, table + 16, { addr: DATA + 8, len: 24, flags: DESC_F_WRITE, next: 0 });
  q.desc(2, { addr: table, len: 32, flags: DESC_F_INDIRECT, next: 0 });
  q.offer(2);
  assert.deepEqual(q.queue.pop(), { head: 2, readable: [{ addr: DATA, len: 8 }], writable: [{ addr: DATA + 8, len: 24 }] });
});

test('malformed chains are refused with a reason', () => {
  const cases: [string, (q: ReturnType<typeof setUp>) => void, RegExp][] = [
    ['head outside the table', (q) => q.offer(SIZE), /head descriptor 8 is outside the table of 8/],
    ['next outside the table', (q) => { q.desc(0, { addr: DATA, len: 1, flags: DESC_F_NEXT, next: SIZE }); q.offer(0); }, /next descriptor 8/],
    ['a loop', (q) => { q.desc(0, { addr: DATA, len: 1, flags: DESC_F_NEXT, next: 1 }); q.desc(1, { addr: DATA, len: 1, flags: DESC_F_NEXT, next: 0 }); q.offer(0); }, /longer than its table of 8 \(a loop\?\)/],
    ['a self-loop', (q) => { q.desc(4, { addr: DATA, len: 1, flags: DESC_F_NEXT | DESC_F_WRITE, next: 4 }); q.offer(4); }, /a loop/],
    ['a buffer past the end of RAM', (q) => { q.desc(0, { addr: RAM - 8, len: 16, flags: DESC_F_WRITE, next: 0 }); q.offer(0); }, /outside guest RAM/],
    ['a buffer at a 64-bit address', (q) => { q.desc(0, { addr: 0xffff_ffff_ffff_f000n, len: 16, flags: 0, next: 0 }); q.offer(0); }, /outside guest RAM/],
    ['readable after writable', (q) => { q.desc(0, { addr: DATA, len: 4, flags: DESC_F_WRITE | DESC_F_NEXT, next: 1 }); q.desc(1, { addr: DATA, len: 4, flags: 0, next: 0 }); q.offer(0); }, /device-readable descriptor after a device-writable/],
    ['indirect not negotiated', (q) => { q.desc(0, { addr: 0x6000, len: 16, flags: DESC_F_INDIRECT, next: 0 }); q.offer(0); }, /VIRTIO_F_INDIRECT_DESC was not negotiated/],
    ['the available index runs ahead of the queue', (q) => { q.memory.writeU16(layout.avail + 2, SIZE + 1); }, /moved 9 entries ahead in a queue of 8/],
  ];
  for (const [what, arrange, pattern] of cases) {
    const q = setUp();
    arrange(q);
    queueError(() => q.queue.pop(), pattern, what);
  }
});

test('malformed indirect tables are refused', () => {
  const cases: [string, Descriptor, Descriptor | undefined, RegExp][] = [
    ['with NEXT', { addr: 0x6000, len: 16, flags: DESC_F_INDIRECT | DESC_F_NEXT, next: 1 }, undefined, /indirect descriptor with NEXT/],
    ['empty', { addr: 0x6000, len: 0, flags: DESC_F_INDIRECT, next: 0 }, undefined, /indirect table of 0 bytes/],
    ['a partial descriptor', { addr: 0x6000, len: 24, flags: DESC_F_INDIRECT, next: 0 }, undefined, /indirect table of 24 bytes/],
    ['longer than the queue', { addr: 0x6000, len: 16 * (SIZE + 1), flags: DESC_F_INDIRECT, next: 0 }, undefined, /9 descriptors, more than the queue size 8/],
    ['outside RAM', { addr: RAM - 16, len: 32, flags: DESC_F_INDIRECT, next: 0 }, undefined, /indirect table at 0xfff0\+32 outside guest RAM/],
    ['nested', { addr: 0x6000, len: 16, flags: DESC_F_INDIRECT, next: 0 }, { addr: 0x6100, len: 16, flags: DESC_F_INDIRECT, next: 0 }, /indirect descriptor inside an indirect table/],
    ['looping inside', { addr: 0x6000, len: 32, flags: DESC_F_INDIRECT, next: 0 }, { addr: DATA, len: 4, flags: DESC_F_NEXT, next: 0 }, /longer than its table of 2/],
  ];
  for (const [what, pointer, entry, pattern] of cases) {
    const q = setUp({ indirect: true });
    if (entry) writeDescriptorAt(q.memory, 0x6000, entry);
    q.desc(0, pointer);
    q.offer(0);
    queueError(() => q.queue.pop(), pattern, what);
  }
});

test('a queue whose rings are misplaced or mis-sized is refused when it is set up', () => {
  const memory = new GuestMemory([{ gpa: 0, bytes: new Uint8Array(RAM) }]);
  const options = { eventIdx: false, indirect: false };
  const good = { size: SIZE, desc: layout.desc, driver: layout.avail, device: layout.used };
  queueError(() => new SplitQueue(memory, { ...good, size: 6 }, options), /queue size 6 is not a power of two/);
  queueError(() => new SplitQueue(memory, { ...good, size: 0 }, options), /queue size 0/);
  queueError(() => new SplitQueue(memory, { ...good, desc: layout.desc + 8 }, options), /descriptor table at 0x1008 is not 16-byte aligned/);
  queueError(() => new SplitQueue(memory, { ...good, driver: layout.avail + 1 }, options), /available ring .* not 2-byte aligned/);
  queueError(() => new SplitQueue(memory, { ...good, device: layout.used + 2 }, options), /used ring .* not 4-byte aligned/);
  queueError(() => new SplitQueue(memory, { ...good, device: RAM - 32 }, options), /used ring at 0xffe0\+70 is outside guest RAM/);
});

test('without EVENT_IDX the driver is interrupted unless it set VIRTQ_AVAIL_F_NO_INTERRUPT', () => {
  const q = setUp();
  assert.equal(q.queue.needsInterrupt(0), false, 'nothing was used');
  q.queue.push(0, 1);
  assert.equal(q.queue.needsInterrupt(0), true);
  q.memory.writeU16(layout.avail, AVAIL_F_NO_INTERRUPT);
  assert.equal(q.queue.needsInterrupt(0), false);
});

test('with EVENT_IDX the device interrupts only when the used index passes used_event, and publishes avail_event', () => {
  const q = setUp({ eventIdx: true });
  const usedEvent = layout.avail + 4 + 2 * SIZE;
  const availEvent = layout.used + 4 + 8 * SIZE;
  q.memory.writeU16(usedEvent, 2); // interrupt me when entry 2 is used
  q.queue.push(0, 1);
  q.queue.push(0, 1);
  assert.equal(q.queue.needsInterrupt(0), false, 'used index 2 has not passed used_event 2');
  q.queue.push(0, 1);
  assert.equal(q.queue.needsInterrupt(2), true, 'entry 2 was used');
  assert.equal(q.queue.needsInterrupt(3), false, 'nothing new');

  q.desc(0, { addr: DATA, len: 4, flags: DESC_F_WRITE, next: 0 });
  q.offer(0);
  q.queue.pop();
  assert.equal(q.queue.armNotification(), false, 'nothing more arrived');
  assert.equal(q.memory.readU16(availEvent), 1, 'notify me when avail index 1 is used');
  q.offer(0);
  assert.equal(q.queue.armNotification(), true, 'a buffer arrived after the last pop');
});
