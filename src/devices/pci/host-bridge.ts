/**
 * The host bridge at 00:00.0: the function every PC has first on bus 0, so
 * a scan finds a bus there. It decodes nothing itself.
 */
import type { DeviceState } from '../device-state.js';
import { PCI_DEVICE_STATE_SIZE, PciDevice } from './pci-device.js';

/** Red Hat's ID for a generic PCIe host bridge of a virtual machine (QEMU's gpex uses it too). */
const REDHAT_VENDOR_ID = 0x1b36;
const GENERIC_HOST_BRIDGE_ID = 0x0008;
const CLASS_HOST_BRIDGE = 0x060000;

export class HostBridge extends PciDevice {
  static readonly stateSize = PCI_DEVICE_STATE_SIZE;

  constructor(state: DeviceState) {
    super(state, {
      vendorId: REDHAT_VENDOR_ID, deviceId: GENERIC_HOST_BRIDGE_ID, revisionId: 0, classCode: CLASS_HOST_BRIDGE,
      subsystemVendorId: REDHAT_VENDOR_ID, subsystemId: GENERIC_HOST_BRIDGE_ID,
      bars: [], capabilities: [], interruptPin: 0, interruptLine: 0,
    });
    this.powerOn();
  }
}
