/*
 * The C side of `npm run bench:exits`: the least a VMM can do for the exit
 * benchmark's guest, to measure tsvmm against.
 *
 * It builds the VM the way src/vmm/builder.ts does (TSS and identity-map
 * pages, in-kernel irqchip and PIT, RAM in a memfd, one vCPU), then loads
 * the vCPU state and RAM image that tsvmm built, dumped by
 * bench/lib/guest-state.ts, so both VMMs run the same guest from the same
 * state. Then it times KVM_RUN round trips until the guest writes the
 * debug-exit port.
 *
 * Usage: exit-loop STATE_FILE
 * Prints one line: "<exits> <nanoseconds>", the exits taken and the time
 * from the first KVM_RUN to the return of the one that saw the debug exit.
 */
#define _GNU_SOURCE
#include <time.h>
#include "kvm-vm.h"

/* The same constants as the device registry. */
#define TEST_DEVICE_BASE 0xc0000000UL
#define TEST_DEVICE_SIZE 0x1000

#define STATE_MAGIC "TSVMMEXB"

/* The state file: magic, u64 RAM size, then length-prefixed blobs in a fixed order. */
struct reader {
  const uint8_t *at;
  const uint8_t *end;
};

static const void *take(struct reader *r, size_t n) {
  if ((size_t)(r->end - r->at) < n) fail("the state file is truncated");
  const void *p = r->at;
  r->at += n;
  return p;
}

static const void *blob(struct reader *r, size_t *size) {
  uint64_t n;
  memcpy(&n, take(r, sizeof n), sizeof n);
  *size = n;
  return take(r, n);
}

static void fixed_blob(struct reader *r, void *into, size_t size, const char *what) {
  size_t n;
  const void *p = blob(r, &n);
  if (n != size) {
    fprintf(stderr, "exit-loop: %s is %zu bytes in the state file, %zu in linux/kvm.h\n", what, n, size);
    exit(2);
  }
  memcpy(into, p, size);
}

static struct reader read_state(const char *path) {
  int fd = open(path, O_RDONLY);
  if (fd < 0) die(path);
  off_t size = lseek(fd, 0, SEEK_END);
  if (size < 0) die("lseek");
  void *p = mmap(NULL, size, PROT_READ, MAP_PRIVATE, fd, 0);
  if (p == MAP_FAILED) die("mmap of the state file");
  close(fd);
  struct reader r = { p, (const uint8_t *)p + size };
  if (memcmp(take(&r, 8), STATE_MAGIC, 8) != 0) fail("not a state file written by bench/lib/guest-state.ts");
  return r;
}

static uint64_t elapsed_ns(const struct timespec *a, const struct timespec *b) {
  return (uint64_t)(b->tv_sec - a->tv_sec) * 1000000000ULL + (uint64_t)(b->tv_nsec - a->tv_nsec);
}

int main(int argc, char **argv) {
  if (argc != 2) fail("usage: exit-loop STATE_FILE");
  struct reader state = read_state(argv[1]);
  uint64_t ram_size;
  memcpy(&ram_size, take(&state, sizeof ram_size), sizeof ram_size);

  struct vm vm = create_vm(ram_size);

  /* Same order as the builder: CPUID, MSRs, then sregs, regs, FPU. */
  size_t n;
  const void *cpuid = blob(&state, &n);
  kvm_ioctl(vm.vcpu, KVM_SET_CPUID2, (void *)cpuid, "KVM_SET_CPUID2");
  const void *msrs = blob(&state, &n);
  kvm_ioctl(vm.vcpu, KVM_SET_MSRS, (void *)msrs, "KVM_SET_MSRS");
  struct kvm_sregs sregs;
  fixed_blob(&state, &sregs, sizeof sregs, "kvm_sregs");
  kvm_ioctl(vm.vcpu, KVM_SET_SREGS, &sregs, "KVM_SET_SREGS");
  struct kvm_regs regs;
  fixed_blob(&state, &regs, sizeof regs, "kvm_regs");
  kvm_ioctl(vm.vcpu, KVM_SET_REGS, &regs, "KVM_SET_REGS");
  struct kvm_fpu fpu;
  fixed_blob(&state, &fpu, sizeof fpu, "kvm_fpu");
  kvm_ioctl(vm.vcpu, KVM_SET_FPU, &fpu, "KVM_SET_FPU");
  const void *image = blob(&state, &n);
  if (n > ram_size) fail("the RAM image is larger than RAM");
  memcpy(vm.ram, image, n);

  /* What the test device does with a write: keep the bytes. */
  static uint8_t test_device[TEST_DEVICE_SIZE];
  struct kvm_run *run = vm.run;
  uint64_t exits = 0;
  struct timespec start, end;
  clock_gettime(CLOCK_MONOTONIC, &start);
  for (;;) {
    run_vcpu(&vm);
    exits++;
    if (run->exit_reason == KVM_EXIT_IO) {
      if (port_exit(run) >= 0) break;
    } else if (run->exit_reason == KVM_EXIT_MMIO) {
      uint64_t offset = run->mmio.phys_addr - TEST_DEVICE_BASE;
      uint32_t len = run->mmio.len > 8 ? 8 : run->mmio.len;
      int on_device = run->mmio.phys_addr >= TEST_DEVICE_BASE && offset + len <= TEST_DEVICE_SIZE;
      if (run->mmio.is_write) {
        if (on_device) memcpy(test_device + offset, run->mmio.data, len);
      } else {
        if (on_device) memcpy(run->mmio.data, test_device + offset, len);
        else memset(run->mmio.data, 0xff, len);
      }
    } else {
      fprintf(stderr, "exit-loop: unexpected exit reason %u after %llu exits\n", run->exit_reason, (unsigned long long)exits);
      return 3;
    }
  }
  clock_gettime(CLOCK_MONOTONIC, &end);
  printf("%llu %llu\n", (unsigned long long)exits, (unsigned long long)elapsed_ns(&start, &end));
  return 0;
}
