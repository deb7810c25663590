/**
 * Every instruction the emulator knows, in one list the decoder matches
 * against. Add a group here when a backend turns out to lack more.
 */
import type { InstructionDef } from './instruction.js';
import { bitCount } from './instructions/bit-count.js';
import { cmpxchg16b } from './instructions/cmpxchg16b.js';
import { segmentBase } from './instructions/segment-base.js';
import { sseControl } from './instructions/sse-control.js';
import { system } from './instructions/system.js';
import { x87Control } from './instructions/x87-control.js';
import { xsave } from './instructions/xsave.js';

export const instructionTable: readonly InstructionDef[] = [
  ...x87Control, ...sseControl, ...system, ...segmentBase, ...bitCount, ...cmpxchg16b, ...xsave,
];
