/**
 * Tests that need /dev/kvm: they fail loudly when it is missing or this
 * user cannot open it, unless TSVMM_SKIP_KVM_TESTS=1 says to skip them
 * (and the skip says why).
 */
import { accessSync, constants, existsSync } from 'node:fs';
import { test, type TestContext, type TestOptions } from 'node:test';

type TestFn = (t: TestContext) => unknown;

export const kvmPresent = existsSync('/dev/kvm');

/** Why KVM tests cannot run here, or undefined when they can. */
export function kvmUnavailableReason(): string | undefined {
  if (!kvmPresent) return '/dev/kvm is missing';
  try {
    accessSync('/dev/kvm', constants.R_OK | constants.W_OK);
    return undefined;
  } catch (e) {
    return `/dev/kvm is not readable and writable by this user (${(e as NodeJS.ErrnoException).code})`;
  }
}

const skipWanted = process.env.TSVMM_SKIP_KVM_TESTS === '1';

export function kvmTest(name: string, fn: TestFn): void;
export function kvmTest(name: string, options: TestOptions, fn: TestFn): void;
export function kvmTest(name: string, optionsOrFn: TestOptions | TestFn, maybeFn?: TestFn): void {
  const [options, fn] = typeof optionsOrFn === 'function' ? [{}, optionsOrFn] : [optionsOrFn, maybeFn!];
  const reason = kvmUnavailableReason();
  if (reason && skipWanted) {
    test(name, { ...options, skip: `${reason} and TSVMM_SKIP_KVM_TESTS=1` }, () => {});
    return;
  }
  test(name, options, async (t) => {
    if (reason) throw new Error(`${reason}: this test needs KVM (run \`tsvmm check\` for the fix, or set TSVMM_SKIP_KVM_TESTS=1 to skip KVM tests)`);
    await fn(t);
  });
}
