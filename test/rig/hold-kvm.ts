/**
 * Keeps one empty VM open in the rig for as long as the job runs.
 *
 * KVM turns AMD-V on in every CPU when the first VM is created and off
 * again when the last one is destroyed, each time by an IPI that every CPU
 * must answer. Under QEMU's emulated AMD-V that IPI is sometimes never
 * answered, and the rig's kernel reports a soft lockup in kvm_destroy_vm
 * (seen once in seven runs of one Linux boot). With this VM open, the
 * tests' VMs are never the last, so the switch happens once, at the start.
 */
import { Kvm } from '../../src/kvm/system.js';

const vm = Kvm.open().createVm();
setInterval(() => vm, 1 << 30);
