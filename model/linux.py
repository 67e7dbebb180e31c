"""Numbers Linux on x86 uses, in one place (see docs/contract.md)."""

PAGE_SHIFT = 12
PAGE_SIZE = 1 << PAGE_SHIFT

PROT_NONE = 0
PROT_READ = 1
PROT_WRITE = 2
PROT_EXEC = 4

MAP_SHARED = 0x01
MAP_PRIVATE = 0x02
MAP_TYPE = 0x0F
MAP_FIXED = 0x10
MAP_ANONYMOUS = 0x20
MAP_FIXED_NOREPLACE = 0x100000

# x86 PTE bits (arch/x86/include/asm/pgtable_types.h)
_PAGE_PRESENT = 0x1
_PAGE_RW = 0x2
_PAGE_USER = 0x4
_PAGE_PWT = 0x8
_PAGE_PCD = 0x10
_PAGE_ACCESSED = 0x20
_PAGE_DIRTY = 0x40
_PAGE_PSE = 0x80
_PAGE_GLOBAL = 0x100
_PAGE_NX = 1 << 63

# x86 page-fault error code bits (arch/x86/include/asm/trap_pf.h)
X86_PF_PROT = 1 << 0
X86_PF_WRITE = 1 << 1
X86_PF_USER = 1 << 2
X86_PF_RSVD = 1 << 3
X86_PF_INSTR = 1 << 4

DEFAULT_MAX_ORDER = 11  # free_area[MAX_ORDER], orders 0..10 (4 MiB blocks)
DEFAULT_MAX_MAP_COUNT = 65530  # sysctl vm.max_map_count
TASK_SIZE_X86_64 = (1 << 47) - PAGE_SIZE
DEFAULT_MMAP_MIN_ADDR = 0x10000


def page_align_up(n: int) -> int:
    return (n + PAGE_SIZE - 1) & ~(PAGE_SIZE - 1)


def page_aligned(n: int) -> bool:
    return n & (PAGE_SIZE - 1) == 0
