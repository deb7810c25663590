/**
 * What a Linux guest is told on a backend that needs the emulation assist.
 *
 * The backend's instruction emulator runs all ring-0 code and passes the
 * host's CPUID through; the assist covers the system instructions it lacks
 * but not vector arithmetic, and the emulator itself runs only plain SSE
 * moves. So the kernel is told its CPU has neither AVX (and so none of AVX2,
 * AVX-512, FMA, VAES...) nor SSSE3, and takes its scalar paths: seen on
 * kvm_pvm, BLAKE2s in the random driver stopped on SSSE3 code (movd, pshufb)
 * and again on its AVX variant. User space is unaffected: ring 3 runs
 * natively and keeps every feature.
 */
export const ASSISTED_KERNEL_PARAMETERS = [
  'clearcpuid=avx,ssse3',
  // Emulated ring-0 code is slow: the crypto self-tests alone took minutes of boot here,
  // and the X.509 certificate load timed out waiting for them.
  'cryptomgr.notests',
];
