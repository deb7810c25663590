/**
 * The test rig's machine: Debian's stock kernel (which has kvm_amd, 9p and
 * the network drivers as modules) and an initramfs whose /init loads them,
 * mounts the host's root file system (shared by QEMU over virtio-9p) and
 * runs one job in it, chrooted, as root. See rig.ts for the QEMU side.
 *
 * The host's root is mounted with the page cache on (cache=loose): the
 * checkout and Node are read many times and not changed during a run, and
 * uncached 9p makes every start of Node seconds slower. The job is a
 * directory on the host, shared as a second, uncached 9p file system: /init
 * runs its job.sh with output going to its `output` file, which the host
 * tails as it grows, and writes the exit status to its `status` file before
 * powering off. Files,
 * not the serial console, carry both: the console also has the firmware's
 * and the kernel's messages and terminal escapes, and is kept apart as
 * console.log, the report of a run that went wrong.
 */
import type { GuestRecipe } from '../../src/guest/initramfs-guest.js';

/** QEMU's user network: the host as the rig sees it, and the rig's own address. */
export const RIG_HOST_ADDRESS = '10.0.2.2';
export const RIG_ADDRESS = '10.0.2.15';

/** The 9p mount tags of the host's root and of the job's directory. */
export const ROOT_TAG = 'host';
export const JOB_TAG = 'job';

/**
 * The job's TMPDIR: a tmpfs of the rig's own, so scratch files stay in the
 * rig. /tmp itself stays the host's: a checkout or a cache under it (a
 * `git clone` into `mktemp -d`) must be seen by the job.
 */
export const RIG_TMPDIR = '/run/tmp';

/** The job's own directory as the job sees it: its script, and whatever the host hands it while it runs. */
export const RIG_JOB_DIR = '/run/job';

/** Directories /init mounts afresh inside the chroot, so the job sees the rig's kernel, not the host's. */
const CHROOT_MOUNTS = `
mount -t proc proc /host/proc
mount -t sysfs sysfs /host/sys
mount -t cgroup2 cgroup2 /host/sys/fs/cgroup
mount -t devtmpfs devtmpfs /host/dev
mkdir -p /host/dev/pts /host/dev/shm
mount -t devpts -o newinstance,ptmxmode=0666 devpts /host/dev/pts
ln -sf pts/ptmx /host/dev/ptmx
mount -t tmpfs tmpfs /host/dev/shm
mount -t tmpfs tmpfs /host/run
mkdir -m 1777 /host${RIG_TMPDIR}
ln -sf /proc/self/fd /host/dev/fd
ln -sf /proc/self/fd/0 /host/dev/stdin
ln -sf /proc/self/fd/1 /host/dev/stdout
ln -sf /proc/self/fd/2 /host/dev/stderr`;

export function renderRigInit(modules: string[]): string {
  for (const path of modules) {
    if (!/^\/[\w./+-]+$/.test(path)) throw new Error(`module path ${path} has characters /init does not quote`);
  }
  return `#!/bin/sh
# tsvmm test rig: see test/rig/rig-machine.ts.
export PATH=/bin:/sbin:/usr/bin:/usr/sbin
/bin/busybox mount -t proc proc /proc
/bin/busybox --install -s
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
hostname tsvmm-rig
ip link set lo up

for module in ${modules.join(' ')}; do
  insmod "$module" || echo "rig-init: could not load $module"
done
# QEMU's user network: the host is ${RIG_HOST_ADDRESS}, and a port the job forwards reaches this address.
ip link set eth0 up && ip addr add ${RIG_ADDRESS}/24 dev eth0 && ip route add default via ${RIG_HOST_ADDRESS} ||
  echo "rig-init: no network"

mkdir -p /host /job
if ! mount -t 9p -o trans=virtio,version=9p2000.L,msize=512000 ${JOB_TAG} /job; then
  echo "rig-init: cannot mount the job's directory over 9p"
elif ! mount -t 9p -o trans=virtio,version=9p2000.L,msize=512000,cache=loose ${ROOT_TAG} /host; then
  echo "rig-init: cannot mount the host's file system over 9p"
else
  ${CHROOT_MOUNTS.trim().split('\n').join('\n  ')}
  mkdir -p /host${RIG_JOB_DIR}
  mount --bind /job /host${RIG_JOB_DIR}
  echo "rig-init: running the job"
  chroot /host /bin/sh ${RIG_JOB_DIR}/job.sh </dev/null >/job/output 2>&1
  echo $? >/job/status
fi
sync
poweroff -f
`;
}

export const RIG_MACHINE: GuestRecipe = {
  name: 'test-rig',
  version: 5,
  // The stock kernel: the cloud kernel has no kvm_amd.
  kernelMetapackage: 'linux-image-amd64',
  modules: [
    { name: 'kvm_amd' },
    { name: 'virtio_pci', optional: true },
    { name: '9pnet_virtio' },
    { name: '9p' },
    // What later tests need: taps, vhost, vsock, network namespaces joined by veth and bridges.
    { name: 'tun' },
    { name: 'vhost_net' },
    { name: 'vhost_vsock' },
    { name: 'vsock_loopback', optional: true },
    { name: 'veth' },
    { name: 'bridge' },
    // The rig's own link to the host (QEMU's user network), for a browser on the host to reach a page served here.
    { name: 'virtio_net' },
  ],
  init: renderRigInit,
};
