/* Lab 2 in C: a buddy allocator whose free() never merges a block with its
 * buddy (as examples/buddy/buggy/no_coalesce.c): the C twin of no_merge.py,
 * and it loses the same items (coalescing, the hidden test, refinement).
 */
#include <stdlib.h>
#include <mmcheck/buddy.h>

static unsigned long npages;
static unsigned max_order;
static signed char *order_of;     /* free block head -> its order, else -1 */
static signed char *alloc_order;  /* allocated block head -> its order, else -1 */

void buddy_init(unsigned long n, unsigned mo)
{
    unsigned long pfn = 0;
    free(order_of);
    free(alloc_order);
    npages = n;
    max_order = mo > 63 ? 63 : mo;
    order_of = malloc(n ? n : 1);
    alloc_order = malloc(n ? n : 1);
    for (unsigned long i = 0; i < n; i++)
        order_of[i] = alloc_order[i] = -1;
    while (pfn < n) {   /* the largest aligned blocks that fit, lowest first */
        unsigned o = max_order - 1;
        while (o > 0 && ((pfn & ((1UL << o) - 1)) || pfn + (1UL << o) > n))
            o--;
        order_of[pfn] = (signed char)o;
        pfn += 1UL << o;
    }
}

long buddy_alloc(unsigned order)
{
    if (order >= max_order)
        return -EINVAL;
    for (unsigned o = order; o < max_order; o++) {
        for (unsigned long pfn = 0; pfn < npages; pfn += 1UL << o) {
            if (order_of[pfn] != (signed char)o)
                continue;
            order_of[pfn] = -1;
            while (o > order) {     /* split: the upper halves stay free */
                o--;
                order_of[pfn + (1UL << o)] = (signed char)o;
            }
            alloc_order[pfn] = (signed char)order;
            return (long)pfn;
        }
    }
    return -1;
}

int buddy_free(unsigned long pfn, unsigned order)
{
    if (order >= max_order || pfn >= npages || alloc_order[pfn] != (signed char)order)
        return -EINVAL;
    alloc_order[pfn] = -1;
    /* BUG: no merging with the buddy pfn ^ (1 << order) */
    order_of[pfn] = (signed char)order;
    return 0;
}

long buddy_free_area(unsigned order, unsigned long *pfns, unsigned long max)
{
    long n = 0;
    if (order >= max_order)
        return -EINVAL;
    for (unsigned long pfn = 0; pfn < npages; pfn += 1UL << order)
        if (order_of[pfn] == (signed char)order) {
            if ((unsigned long)n < max)
                pfns[n] = pfn;
            n++;
        }
    return n;
}
