import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Bus } from '../../src/devices/bus.js';
import type { DeviceContext } from '../../src/devices/context.js';
import { AcpiPm, ACPI_PM_BASE, RESET, RESET_VALUE, SLEEP_CONTROL, SLEEP_STATUS } from '../../src/devices/legacy/acpi-pm.js';
import { attachDevice, machineDevice, placement } from '../../src/devices/registry.js';
import type { VmStop } from '../../src/devices/vm-stop.js';

/** A device context that records what the device asked of the machine. */
function recorder() {
  const stops: VmStop[] = [];
  const ctx: DeviceContext = { vcpuId: 0, console: () => {}, irq: () => {}, stop: (outcome) => stops.push(outcome) };
  return { ctx, stops };
}

const SLP_EN = 0x20;
const slpTyp = (type: number) => type << 2;

test('SLP_EN with SLP_TYP 5 in the sleep control register powers the VM off', () => {
  const { ctx, stops } = recorder();
  const pm = new AcpiPm(ctx);
  // What ACPICA's hardware-reduced sleep does: clear WAK_STS, then SLP_TYP | SLP_EN.
  pm.write(SLEEP_STATUS, Uint8Array.of(0x80));
  assert.equal(stops.length, 0);
  pm.write(SLEEP_CONTROL, Uint8Array.of(slpTyp(5) | SLP_EN));
  assert.deepEqual(stops, [{ kind: 'shutdown', exitCode: 0, message: 'the guest powered off' }]);
});

test('SLP_TYP without SLP_EN does nothing; another sleep type is a guest error', () => {
  const { ctx, stops } = recorder();
  const pm = new AcpiPm(ctx);
  pm.write(SLEEP_CONTROL, Uint8Array.of(slpTyp(5)));
  assert.equal(stops.length, 0);
  pm.write(SLEEP_CONTROL, Uint8Array.of(slpTyp(3) | SLP_EN));
  assert.equal(stops.length, 1);
  assert.equal(stops[0].kind, 'guest-error');
  assert.match(stops[0].message, /sleep type 3/);
});

test('the reset value in the reset register resets the VM; other values do not', () => {
  const { ctx, stops } = recorder();
  const pm = new AcpiPm(ctx);
  pm.write(RESET, Uint8Array.of(RESET_VALUE ^ 0xff));
  assert.equal(stops.length, 0);
  pm.write(RESET, Uint8Array.of(RESET_VALUE));
  assert.deepEqual(stops, [{ kind: 'reset', exitCode: 0, message: 'the guest asked for a reset' }]);
});

test('the sleep status register reads 0: WAK_STS is never set', () => {
  const pm = new AcpiPm(recorder().ctx);
  const data = Uint8Array.of(0xff);
  pm.read(SLEEP_STATUS, data);
  assert.equal(data[0], 0);
});

test('a wide write reaches each byte-wide register it covers', () => {
  const { ctx, stops } = recorder();
  // A 32-bit write at the base: control, status, reset, reserved.
  new AcpiPm(ctx).write(0, Uint8Array.of(0, 0, RESET_VALUE, 0));
  assert.deepEqual(stops.map((s) => s.kind), ['reset']);
});

test("the registry places the device at 0x600 on the port bus; guests' writes reach it", () => {
  assert.deepEqual(placement({ kind: 'acpi-pm' }), { name: 'acpi-pm', bus: 'pio', base: ACPI_PM_BASE, length: 4 });
  const buses = { pio: new Bus('pio'), mmio: new Bus('mmio') };
  const { ctx, stops } = recorder();
  attachDevice(machineDevice({ kind: 'acpi-pm' }), buses, ctx);
  const entry = buses.pio.find(0x600)!;
  assert.equal(entry.name, 'acpi-pm');
  entry.device.write(0x600 - entry.base, Uint8Array.of(slpTyp(5) | SLP_EN));
  assert.equal(stops[0]?.kind, 'shutdown');
});
