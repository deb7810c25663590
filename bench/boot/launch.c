/*
 * The C side of `npm run bench:boot`: the least a VMM can do to start a
 * multiboot ELF kernel, to time tsvmm's start against.
 *
 * It sets the VM up the way src/vmm/builder.ts does (TSS and identity-map
 * pages, in-kernel irqchip and PIT, RAM in a memfd, one vCPU with the
 * supported CPUID), loads the kernel's PT_LOAD segments, starts the vCPU
 * in 32-bit flat protected mode at the ELF entry with EAX = 0x2BADB002 (as
 * a multiboot loader does; no information structure: EBX = 0), and runs it
 * until the guest writes the debug-exit port.
 *
 * Usage: launch KERNEL.elf
 * Exits as QEMU's isa-debug-exit and tsvmm do: (value << 1) | 1.
 */
#define _GNU_SOURCE
#include <elf.h>
#include <sys/stat.h>
#include "../c/kvm-vm.h"

/* tsvmm's and QEMU's default RAM for a kernel that is not Linux. */
#define RAM_SIZE (128UL << 20)
#define MULTIBOOT_BOOTLOADER_MAGIC 0x2badb002
#define MAX_CPUID_ENTRIES 256

/* Copies the kernel's loadable segments into RAM (bss zeroed) and returns its entry point. */
static uint32_t load_elf32(const char *path, uint8_t *ram) {
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) die(path);
  struct stat st;
  if (fstat(fd, &st) < 0) die("fstat");
  const uint8_t *file = mmap(NULL, st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
  if (file == MAP_FAILED) die("mmap of the kernel");
  close(fd);
  const Elf32_Ehdr *eh = (const Elf32_Ehdr *)file;
  if ((size_t)st.st_size < sizeof *eh || memcmp(eh->e_ident, ELFMAG, SELFMAG) != 0 || eh->e_ident[EI_CLASS] != ELFCLASS32) {
    fail("the kernel is not an ELF32 file");
  }
  if (eh->e_phoff + (uint64_t)eh->e_phnum * sizeof(Elf32_Phdr) > (uint64_t)st.st_size) fail("the program headers are past the end of the file");
  const Elf32_Phdr *ph = (const Elf32_Phdr *)(file + eh->e_phoff);
  for (int i = 0; i < eh->e_phnum; i++) {
    if (ph[i].p_type != PT_LOAD) continue;
    if ((uint64_t)ph[i].p_paddr + ph[i].p_memsz > RAM_SIZE || ph[i].p_filesz > ph[i].p_memsz) fail("a segment does not fit in RAM");
    if ((uint64_t)ph[i].p_offset + ph[i].p_filesz > (uint64_t)st.st_size) fail("a segment is past the end of the file");
    memcpy(ram + ph[i].p_paddr, file + ph[i].p_offset, ph[i].p_filesz);
    memset(ram + ph[i].p_paddr + ph[i].p_filesz, 0, ph[i].p_memsz - ph[i].p_filesz);
  }
  return eh->e_entry;
}

static void set_supported_cpuid(int kvm, int vcpu) {
  size_t size = sizeof(struct kvm_cpuid2) + MAX_CPUID_ENTRIES * sizeof(struct kvm_cpuid_entry2);
  struct kvm_cpuid2 *cpuid = calloc(1, size);
  if (cpuid == NULL) die("calloc");
  cpuid->nent = MAX_CPUID_ENTRIES;
  kvm_ioctl(kvm, KVM_GET_SUPPORTED_CPUID, cpuid, "KVM_GET_SUPPORTED_CPUID");
  kvm_ioctl(vcpu, KVM_SET_CPUID2, cpuid, "KVM_SET_CPUID2");
  free(cpuid);
}

/* Flat 4 GiB segments, 32-bit, paging off: the state a multiboot kernel starts in. */
static void enter_protected_mode(int vcpu, uint32_t entry) {
  struct kvm_sregs sregs;
  kvm_ioctl(vcpu, KVM_GET_SREGS, &sregs, "KVM_GET_SREGS");
  struct kvm_segment code = {
    .base = 0, .limit = 0xffffffff, .selector = 0x08, .type = 0xb, .present = 1, .dpl = 0, .db = 1, .s = 1, .g = 1,
  };
  struct kvm_segment data = code;
  data.selector = 0x10;
  data.type = 0x3;
  sregs.cs = code;
  sregs.ds = sregs.es = sregs.fs = sregs.gs = sregs.ss = data;
  sregs.cr0 = 0x11; /* PE | ET */
  kvm_ioctl(vcpu, KVM_SET_SREGS, &sregs, "KVM_SET_SREGS");
  struct kvm_regs regs = { .rip = entry, .rax = MULTIBOOT_BOOTLOADER_MAGIC, .rflags = 0x2 };
  kvm_ioctl(vcpu, KVM_SET_REGS, &regs, "KVM_SET_REGS");
}

int main(int argc, char **argv) {
  if (argc != 2) fail("usage: launch KERNEL.elf");

  struct vm vm = create_vm(RAM_SIZE);
  uint32_t entry = load_elf32(argv[1], vm.ram);
  set_supported_cpuid(vm.kvm, vm.vcpu);
  enter_protected_mode(vm.vcpu, entry);

  for (;;) {
    run_vcpu(&vm);
    if (vm.run->exit_reason != KVM_EXIT_IO) {
      fprintf(stderr, "launch: unexpected exit reason %u\n", vm.run->exit_reason);
      return 3;
    }
    int value = port_exit(vm.run);
    if (value >= 0) return (value << 1) | 1;
  }
}
