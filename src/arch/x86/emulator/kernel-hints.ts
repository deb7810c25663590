/**
 * What a Linux guest is told on a backend that needs the emulation assist.
 *
 * The backend's instruction emulator runs all ring-0 code and passes the
 * host's CPUID through; the assist covers the system instructions it lacks
 * but not vector arithmetic. So the kernel is told not to use AVX (and with
 * it everything built on AVX: AVX2, AVX-512, FMA, VAES...), and uses its SSE
 * paths, which the backend's emulator runs. User space is unaffected: ring 3
 * runs natively and keeps every feature.
 */
export const ASSISTED_KERNEL_PARAMETERS = ['clearcpuid=avx'];
