spec buddy "How the buddy allocator lays out memory (checked against the reference model)"

def size(b) = 2 ** b.order
def span(b) = b.pfn .. b.pfn + size(b)

invariant aligned "every block starts at a multiple of its size":
    forall b in free + allocated: b.pfn % size(b) == 0

invariant no_overlap "no two blocks, free or allocated, share a page":
    forall a, b in free + allocated: disjoint(span(a), span(b))
