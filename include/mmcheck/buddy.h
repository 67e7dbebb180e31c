/* The buddy page allocator, C form of the contract's BuddyAllocator
 * (docs/contract.md, "C submissions"). Build a submission against it:
 *
 *     cc -shared -fPIC -I include -o buddy.so buddy.c
 *
 * mmcheck does that itself for `mmcheck check --impl buddy.c`. There is one
 * allocator per process: buddy_init() (re)starts it with every page free.
 */
#ifndef MMCHECK_BUDDY_H
#define MMCHECK_BUDDY_H

#include <errno.h>

/* Manage pfns [0, npages), all free; orders are 0 .. max_order - 1. */
void buddy_init(unsigned long npages, unsigned max_order);

/* The first pfn of a free block of 2**order pages aligned to 2**order, now
 * allocated; -1 when no aligned run of 2**order free pages exists;
 * -EINVAL for an order outside [0, max_order). */
long buddy_alloc(unsigned order);

/* Free a block buddy_alloc(order) returned that is still allocated: 0, or
 * -EINVAL for anything else (double free, wrong order, a pfn never returned). */
int buddy_free(unsigned long pfn, unsigned order);

/* Optional, as free_area() is in the Python form (docs/contract.md
 * [BUDDY-FREE-AREA]): write the first pfns of the free blocks of `order` into
 * pfns[0 .. max) and return how many there are, all of them even when that is
 * more than max (the checker then asks again with room for them); -EINVAL for
 * an order outside [0, max_order). Without it the checker cannot see the free
 * lists: the properties about them are "not observable on this submission". */
long buddy_free_area(unsigned order, unsigned long *pfns, unsigned long max);

#endif
