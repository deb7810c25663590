/**
 * Where tsvmm puts the structures it builds for a guest in low memory,
 * below where guests are usually loaded (0x7c00 for boot sectors, 1 MiB for
 * kernels).
 */
export const GDT_BASE = 0x500;
export const TSS_BASE = 0x580;
/** Top of a small ring-0 stack (RSP0 in the TSS) for guests that start at CPL3. */
export const RING0_STACK_TOP = 0x1000;
export const PAGE_TABLES_BASE = 0x1000;
