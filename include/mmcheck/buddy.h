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

#endif
