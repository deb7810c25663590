/**
 * The default guest's /init (run by busybox sh as PID 1) and the protocol
 * between it and the VMM, which reads the guest's serial console.
 *
 * Boot: /init mounts proc, sysfs and devtmpfs, installs the busybox applet
 * links, loads the virtio modules (each after its dependencies) and prints
 *
 *     TSVMM-READY cpus=<n>
 *
 * on a line of its own, n being the CPUs the guest kernel brought up.
 *
 * Network: lo comes up; with `ip=<client>:<server>:<gateway>:<netmask>:
 * <hostname>:<device>:<autoconf>:<dns0>:<dns1>` on the kernel command line
 * (Documentation/admin-guide/nfs/nfsroot.rst; the kernel's own IP autoconfig
 * would run before the virtio-net module is loaded), /init gives the device
 * (default eth0) that address, the gateway as its default route, and the
 * name servers to /etc/resolv.conf. Only static addresses: autoconf must be
 * off or none (or empty); `ip=off` leaves the interface down.
 *
 * Command: if the kernel command line holds `tsvmm.cmd=<fields>` (see
 * guestCommandParameter), /init runs that argv with the console as its
 * stdin, stdout and stderr, then prints
 *
 *     TSVMM-EXIT status=<n>
 *
 * with the command's exit status (127: not found; 128+N: killed by signal
 * N), syncs and powers off (`poweroff -f`). The VMM exits with that status.
 * Without a command, /init starts an interactive shell on the console; when
 * the shell exits, /init prints TSVMM-EXIT with the shell's status and
 * powers off the same way.
 *
 * The kernel's own messages share the console; the VMM may pass `quiet` to
 * keep them out of the command's output. Markers always start a line, but
 * kernel messages printed at the same moment may split a line, so the VMM
 * should match the whole marker line (READY_LINE, EXIT_LINE).
 */

export const COMMAND_PARAMETER = 'tsvmm.cmd';
export const READY_LINE = /^TSVMM-READY cpus=(\d+)\s*$/;
export const EXIT_LINE = /^TSVMM-EXIT status=(\d+)\s*$/;

/**
 * The kernel command-line word that makes /init run `argv`:
 * `tsvmm.cmd=` followed by one field per argument, joined by commas, each
 * field the base64 of the argument's UTF-8 bytes followed by ".". The dot
 * keeps every field non-empty (so "" survives the shell's splitting on
 * commas) and protects trailing newlines from command substitution; base64
 * keeps spaces, quotes and commas out of the command line. The whole kernel
 * command line must stay under the kernel's limit (2048 bytes on x86).
 */
export function guestCommandParameter(argv: string[]): string {
  if (argv.length === 0) throw new Error('the guest command needs at least a program name');
  return `${COMMAND_PARAMETER}=${argv.map((arg) => Buffer.from(`${arg}.`, 'utf8').toString('base64')).join(',')}`;
}

/**
 * The shell function /init uses to run the command: `run_command FIELDS`
 * decodes the fields of a tsvmm.cmd word into its positional parameters,
 * runs them and returns their status. Kept apart so that tests can run it
 * with any POSIX sh.
 */
export const RUN_COMMAND_FUNCTION = `run_command() {
  fields=$1
  set --
  set -f
  IFS=,
  for field in $fields; do
    arg=$(printf '%s' "$field" | base64 -d) || { unset IFS; set +f; echo "tsvmm-init: ${COMMAND_PARAMETER} is not valid base64" >&2; return 127; }
    set -- "$@" "\${arg%.}"
  done
  unset IFS
  set +f
  "$@"
}
`;

/** `configure_network IP_WORD`: the ip= value, as the module comment says. Kept apart so tests can read its commands. */
export const CONFIGURE_NETWORK_FUNCTION = `configure_network() {
  case "$1" in off|none|'') return 0 ;; esac
  saved_ifs=$IFS
  IFS=:
  set -- $1
  IFS=$saved_ifs
  client=$1 gateway=$3 netmask=$4 name=$5 device=\${6:-eth0} autoconf=$7
  case "$autoconf" in ''|off|none) ;; *) echo "tsvmm-init: ip=: autoconf '$autoconf' is not supported; give a static address" >&2; return 1 ;; esac
  [ -n "$name" ] && hostname "$name"
  ifconfig "$device" "$client" \${netmask:+netmask "$netmask"} up || { echo "tsvmm-init: ip=: cannot configure $device" >&2; return 1; }
  [ -n "$gateway" ] && route add default gw "$gateway" "$device"
  mkdir -p /etc
  for dns in $8 $9; do echo "nameserver $dns"; done > /etc/resolv.conf
  return 0
}`;

export interface InitScriptSpec {
  /** Module files in load order, as absolute paths inside the initramfs. */
  modules: string[];
}

export function renderInitScript(spec: InitScriptSpec): string {
  for (const path of spec.modules) {
    if (!/^\/[\w./+-]+$/.test(path)) throw new Error(`module path ${path} has characters /init does not quote`);
  }
  return `#!/bin/sh
# tsvmm default guest: see src/guest/init-script.ts for what this prints.
export PATH=/bin:/sbin:/usr/bin:/usr/sbin HOME=/root TERM=linux
/bin/busybox mount -t proc proc /proc
/bin/busybox --install -s
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
hostname tsvmm

for module in ${spec.modules.join(' ')}; do
  insmod "$module" || echo "tsvmm-init: could not load $module" >&2
done

${CONFIGURE_NETWORK_FUNCTION}
ip link set lo up
for word in $(cat /proc/cmdline); do
  case "$word" in ip=*) configure_network "\${word#ip=}" ;; esac
done

echo "TSVMM-READY cpus=$(grep -c ^processor /proc/cpuinfo)"

finish() {
  echo "TSVMM-EXIT status=$1"
  sync
  poweroff -f
}

${RUN_COMMAND_FUNCTION}
# The command-line words are split on spaces without expanding * or ?.
set -f
encoded=
for word in $(cat /proc/cmdline); do
  case "$word" in ${COMMAND_PARAMETER}=*) encoded=\${word#${COMMAND_PARAMETER}=} ;; esac
done
set +f

cd /
if [ -n "$encoded" ]; then
  run_command "$encoded"
else
  setsid cttyhack sh
fi
finish $?
`;
}
