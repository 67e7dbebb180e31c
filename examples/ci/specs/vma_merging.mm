spec vma "What a process's address space looks like after mmap and munmap"

def MAP_PRIVATE = 2

invariant well_formed "every area has start < end, both page-aligned":
    forall v in vmas: v.start < v.end and v.start % 4096 == 0 and v.end % 4096 == 0

invariant merged "two neighbouring private areas with the same protection are one area":
    forall a, b in vmas:
        (a.end == b.start and a.flags == MAP_PRIVATE and b.flags == MAP_PRIVATE)
            -> a.prot != b.prot
