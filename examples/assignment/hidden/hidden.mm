spec buddy "Lab 2: hidden tests (not handed out)"

def size(b) = 2 ** b.order

invariant empty_is_maximal "with nothing allocated, every free block is as big as its alignment and the memory allow":
    count(a in allocated) == 0 ->
        (forall b in free:
            b.order == max_order - 1
            or not aligned(b.pfn, 2 * size(b))
            or b.pfn + 2 * size(b) > npages)
