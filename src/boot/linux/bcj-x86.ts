/**
 * The decoder of xz's x86 branch/call/jump filter, which kernels' xz
 * payloads go through (scripts/xz_wrap.sh passes --x86). The encoder turned
 * the relative targets of E8 (call) and E9 (jmp) instructions into absolute
 * ones, which compress better; this turns them back. Which E8/E9 bytes were
 * converted depends on the bytes seen just before (`prevMask`), so the
 * decoder must replay the encoder's choices exactly.
 */

/** Whether the low three bits of prevMask (after a shift) still allow a conversion. */
const MASK_ALLOWS = [true, true, true, false, true, false, false, false];
/** For each prevMask state, which byte of the target decides whether to convert again. */
const MASK_BIT_NUMBER = [0, 1, 2, 2, 3, 3, 3, 3];

/** A target's most significant byte as the encoder converts it: 0x00 or 0xFF. */
const isMsbOfNearTarget = (b: number): boolean => b === 0x00 || b === 0xff;

/** Undoes the filter in place; `start` is the filter's start offset (0 unless the xz header gives one). */
export function undoX86Bcj(data: Uint8Array, start = 0): void {
  if (data.length < 5) return;
  let prevMask = 0;
  let prevPos = -5;
  const limit = data.length - 5;
  let i = 0;
  while (i <= limit) {
    if (data[i] !== 0xe8 && data[i] !== 0xe9) {
      i++;
      continue;
    }
    const distance = i - prevPos;
    prevPos = i;
    if (distance > 5) {
      prevMask = 0;
    } else {
      for (let k = 0; k < distance; k++) prevMask = (prevMask & 0x77) << 1;
    }

    let b = data[i + 4];
    if (isMsbOfNearTarget(b) && MASK_ALLOWS[(prevMask >> 1) & 7] && prevMask >> 1 < 0x10) {
      let src = (b << 24) | (data[i + 3] << 16) | (data[i + 2] << 8) | data[i + 1];
      let dest: number;
      for (;;) {
        dest = (src - (start + i + 5)) | 0;
        if (prevMask === 0) break;
        const bitNumber = MASK_BIT_NUMBER[prevMask >> 1];
        b = (dest >>> (24 - bitNumber * 8)) & 0xff;
        if (!isMsbOfNearTarget(b)) break;
        src = dest ^ ((2 ** (32 - bitNumber * 8)) - 1);
      }
      // Bit 24 of the target is spread over the top byte: near targets are sign-extended.
      data[i + 4] = (dest >>> 24) & 1 ? 0xff : 0x00;
      data[i + 3] = (dest >>> 16) & 0xff;
      data[i + 2] = (dest >>> 8) & 0xff;
      data[i + 1] = dest & 0xff;
      i += 5;
      prevMask = 0;
    } else {
      i++;
      prevMask |= 1;
      if (isMsbOfNearTarget(b)) prevMask |= 0x10;
    }
  }
}
