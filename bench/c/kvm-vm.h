/*
 * The VM the C benchmark programs (bench/c/exit-loop.c, bench/boot/launch.c)
 * start from, set up the way src/vmm/builder.ts sets up tsvmm's: TSS and
 * identity-map pages, in-kernel irqchip and PIT, RAM in a memfd at guest
 * physical 0, one vCPU with its kvm_run mapped. The vCPU's registers are
 * left to the program.
 *
 * Every error ends the program with status 2 and a line on stderr that
 * starts with the program's name. Include after defining _GNU_SOURCE.
 */
#ifndef TSVMM_BENCH_KVM_VM_H
#define TSVMM_BENCH_KVM_VM_H

#include <errno.h>
#include <fcntl.h>
#include <linux/kvm.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

/* The same constants as src/vmm/builder.ts and the device registry. */
#define KVM_TSS_ADDR 0xfffbd000UL
#define KVM_IDENTITY_MAP_ADDR 0xfffbc000UL
#define DEBUG_EXIT_PORT 0xf4

static void die(const char *what) {
  fprintf(stderr, "%s: %s: %s\n", program_invocation_short_name, what, strerror(errno));
  exit(2);
}

static void fail(const char *message) {
  fprintf(stderr, "%s: %s\n", program_invocation_short_name, message);
  exit(2);
}

static int kvm_ioctl(int fd, unsigned long request, void *arg, const char *name) {
  int r = ioctl(fd, request, arg);
  if (r < 0) die(name);
  return r;
}

struct vm {
  /* /dev/kvm, for system ioctls such as KVM_GET_SUPPORTED_CPUID. */
  int kvm;
  int vcpu;
  uint8_t *ram;
  struct kvm_run *run;
};

static struct vm create_vm(uint64_t ram_size) {
  struct vm vm;
  vm.kvm = open("/dev/kvm", O_RDWR | O_CLOEXEC);
  if (vm.kvm < 0) die("/dev/kvm");
  int fd = kvm_ioctl(vm.kvm, KVM_CREATE_VM, 0, "KVM_CREATE_VM");
  int run_size = kvm_ioctl(vm.kvm, KVM_GET_VCPU_MMAP_SIZE, 0, "KVM_GET_VCPU_MMAP_SIZE");
  kvm_ioctl(fd, KVM_SET_TSS_ADDR, (void *)KVM_TSS_ADDR, "KVM_SET_TSS_ADDR");
  uint64_t identity_map = KVM_IDENTITY_MAP_ADDR;
  kvm_ioctl(fd, KVM_SET_IDENTITY_MAP_ADDR, &identity_map, "KVM_SET_IDENTITY_MAP_ADDR");
  kvm_ioctl(fd, KVM_CREATE_IRQCHIP, 0, "KVM_CREATE_IRQCHIP");
  struct kvm_pit_config pit = { .flags = KVM_PIT_SPEAKER_DUMMY };
  kvm_ioctl(fd, KVM_CREATE_PIT2, &pit, "KVM_CREATE_PIT2");

  int memfd = memfd_create("guest-ram", MFD_CLOEXEC);
  if (memfd < 0) die("memfd_create");
  if (ftruncate(memfd, (off_t)ram_size) < 0) die("ftruncate");
  vm.ram = mmap(NULL, ram_size, PROT_READ | PROT_WRITE, MAP_SHARED, memfd, 0);
  if (vm.ram == MAP_FAILED) die("mmap of guest RAM");
  struct kvm_userspace_memory_region region = {
    .slot = 0, .guest_phys_addr = 0, .memory_size = ram_size, .userspace_addr = (uintptr_t)vm.ram,
  };
  kvm_ioctl(fd, KVM_SET_USER_MEMORY_REGION, &region, "KVM_SET_USER_MEMORY_REGION");

  vm.vcpu = kvm_ioctl(fd, KVM_CREATE_VCPU, 0, "KVM_CREATE_VCPU");
  vm.run = mmap(NULL, run_size, PROT_READ | PROT_WRITE, MAP_SHARED, vm.vcpu, 0);
  if (vm.run == MAP_FAILED) die("mmap of kvm_run");
  return vm;
}

/* One KVM_RUN, entered again when a signal interrupted it before an exit. */
static void run_vcpu(const struct vm *vm) {
  while (ioctl(vm->vcpu, KVM_RUN, 0) < 0) {
    if (errno != EINTR && errno != EAGAIN) die("KVM_RUN");
  }
}

/*
 * Answers a KVM_EXIT_IO the way an empty bus would (reads get all-ones,
 * writes go nowhere) and returns -1, or returns the byte the guest wrote
 * to the debug-exit port.
 */
static int port_exit(struct kvm_run *run) {
  uint8_t *data = (uint8_t *)run + run->io.data_offset;
  if (run->io.port == DEBUG_EXIT_PORT && run->io.direction == KVM_EXIT_IO_OUT) return data[0];
  if (run->io.direction == KVM_EXIT_IO_IN) memset(data, 0xff, run->io.size * run->io.count);
  return -1;
}

#endif
