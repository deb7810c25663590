/**
 * Tests that need /dev/kvm: they fail loudly when it is missing, unless
 * TSVMM_SKIP_KVM_TESTS=1 says to skip them (and the skip says why).
 */
import { existsSync } from 'node:fs';
import { test, type TestContext } from 'node:test';

export const kvmPresent = existsSync('/dev/kvm');
const skipWanted = process.env.TSVMM_SKIP_KVM_TESTS === '1';

export function kvmTest(name: string, fn: (t: TestContext) => unknown | Promise<unknown>): void {
  if (!kvmPresent && skipWanted) {
    test.skip(`${name} (skipped: /dev/kvm is missing and TSVMM_SKIP_KVM_TESTS=1)`, () => {});
    return;
  }
  test(name, async (t) => {
    if (!kvmPresent) {
      throw new Error('/dev/kvm is missing: this test needs KVM (set TSVMM_SKIP_KVM_TESTS=1 to skip KVM tests explicitly)');
    }
    await fn(t);
  });
}
