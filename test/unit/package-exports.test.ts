/**
 * What `import ... from 'tsvmm'` gives a user, through package.json's
 * exports map: the library, the Firecracker client, the schemas and every
 * error class; and nothing deeper (internals are not importable by path).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';

test('the package entry point exports the public API', async () => {
  const tsvmm = await import('tsvmm');
  for (const name of [
    'buildMachine', 'Machine', 'FirecrackerClient', 'FirecrackerApiError', 'VmResources', 'MachineConfigSchema', 'DeviceConfigSchema',
    'ConfigFileSchema', 'TSVMM_VERSION', 'ConfigError', 'InputError', 'ElfError', 'MultibootError', 'LinuxImageError', 'LinuxLoadError',
    'RawImageError', 'CpuFeatureError', 'SystemError', 'KvmError', 'GuestMemoryError',
  ]) {
    assert.ok(name in tsvmm, `tsvmm exports ${name}`);
  }
  for (const error of ['ConfigError', 'InputError', 'ElfError', 'MultibootError', 'CpuFeatureError'] as const) {
    assert.ok(new (tsvmm[error] as new (m: string) => Error)('x') instanceof Error, `${error} is an Error class`);
  }
  await assert.rejects(import('tsvmm/dist/src/vmm/builder.js' as string), /ERR_PACKAGE_PATH_NOT_EXPORTED/);
});
