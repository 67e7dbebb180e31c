spec buddy "Lab 2: the course's own rules, beyond the standard library"

def size(b) = 2 ** b.order

action free_makes_room "after a successful free, a block of that order or larger is free"
after free(pfn, order):
    not raised -> (exists b in free: b.order >= order)
