/**
 * Tests that need /dev/kvm. They fail loudly when it is missing or this
 * user cannot open it, unless TSVMM_SKIP_KVM_TESTS=1 says to skip them
 * (and the skip says why).
 *
 * `npm test` (test/suite.ts) runs each of them where it can run: on the
 * host's KVM when that is hardware KVM, else in the test rig, and on a
 * software backend also on the host for the tests that are about that
 * backend. It tells a run which of them it wants through TSVMM_E2E_SCOPE:
 * `backend-specific` registers only the tests marked `backend` or
 * `perBackend` that can run here; anything else registers every test.
 */
import { accessSync, constants, existsSync } from 'node:fs';
import { test, type TestContext, type TestOptions } from 'node:test';
import { hostBackend } from '../../src/host/backend-kind.js';
import type { BackendKind } from '../../src/host/kvm-backend.js';

type TestFn = (t: TestContext) => unknown;

export interface KvmTestOptions extends TestOptions {
  /** The test is about one kind of backend and means nothing on another (e.g. the emulation assist's reports). */
  backend?: Exclude<BackendKind, 'unknown'>;
  /** The test's assertions depend on the backend: on a software host it runs both there and in the rig. */
  perBackend?: boolean;
}

/** A kvmTest without a timeout of its own gets this one: a hung guest fails its test instead of the suite. */
export const DEFAULT_KVM_TEST_TIMEOUT_MS = 5 * 60_000;

const kvmPresent = existsSync('/dev/kvm');

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
export const BACKEND_SPECIFIC_SCOPE = 'backend-specific';
const backendSpecificOnly = process.env.TSVMM_E2E_SCOPE === BACKEND_SPECIFIC_SCOPE;

export function kvmTest(name: string, fn: TestFn): void;
export function kvmTest(name: string, options: KvmTestOptions, fn: TestFn): void;
export function kvmTest(name: string, optionsOrFn: KvmTestOptions | TestFn, maybeFn?: TestFn): void {
  const [{ backend, perBackend, ...options }, fn] = typeof optionsOrFn === 'function' ? [{} as KvmTestOptions, optionsOrFn] : [optionsOrFn, maybeFn!];
  options.timeout ??= DEFAULT_KVM_TEST_TIMEOUT_MS;
  const reason = kvmUnavailableReason();
  const here = hostBackend();
  if (backendSpecificOnly && !(perBackend || (backend !== undefined && backend === here.kind))) return;
  if (reason && skipWanted) {
    test(name, { ...options, skip: `${reason} and TSVMM_SKIP_KVM_TESTS=1` }, () => {});
    return;
  }
  if (!reason && backend !== undefined && backend !== here.kind) {
    test(name, { ...options, skip: `for a ${backend} KVM backend; this one is ${here.module ?? 'none'} (${here.kind})` }, () => {});
    return;
  }
  test(name, options, async (t) => {
    if (reason) throw new Error(`${reason}: this test needs KVM (run \`tsvmm check\` for the fix, or set TSVMM_SKIP_KVM_TESTS=1 to skip KVM tests)`);
    await fn(t);
  });
}
