/**
 * The emulator's mnemonics as a fixed list, so assisted instructions can be
 * counted in shared statistics slots by index.
 */
import { instructionTable } from './instruction-table.js';

export const assistMnemonics: readonly string[] = [...new Set(instructionTable.map((d) => d.mnemonic)), '(fetch)'];

export function mnemonicSlot(mnemonic: string): number {
  return assistMnemonics.indexOf(mnemonic);
}
