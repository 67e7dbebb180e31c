/* A buggy slab cache in C: free() does not check that the object is live (a double free).
 *
 * Written as examples/slab/correct/cache.c, but kmem_cache_free() accepts any
 * object-aligned address of one of its slabs: freeing an object twice pushes
 * its index on the free stack twice, so two later allocations return it.
 *
 * Expected counterexample (free_refuses_non_objects, SLAB-2): alloc() -> 0,
 * free(0), free(0) returns 0 instead of -EINVAL.
 */
#include <stdlib.h>
#include <mmcheck/slab.h>

struct slab {
    unsigned long pfn;
    unsigned inuse;
    unsigned nfree;
    unsigned *free;        /* stack of free object indices */
    unsigned char *live;   /* live[i]: object i is allocated */
    struct slab *next;
};

struct kmem_cache {
    unsigned long objsize;
    unsigned order;
    unsigned num;
    unsigned long live_objs;
    alloc_pages_t alloc_pages;
    free_pages_t free_pages;
    struct slab *slabs;
};

struct kmem_cache *kmem_cache_create(const char *name, unsigned long size,
                                     unsigned long align, alloc_pages_t alloc_pages,
                                     free_pages_t free_pages)
{
    struct kmem_cache *c;
    (void)name;
    if (size < 1 || align < 1 || (align & (align - 1)) || size > (1UL << 40))
        return NULL;
    c = calloc(1, sizeof(*c));
    if (!c)
        return NULL;
    c->objsize = (size + align - 1) / align * align;
    while ((MMCHECK_PAGE_SIZE << c->order) < c->objsize)
        c->order++;
    c->num = (MMCHECK_PAGE_SIZE << c->order) / c->objsize;
    c->alloc_pages = alloc_pages;
    c->free_pages = free_pages;
    return c;
}

static struct slab *cache_grow(struct kmem_cache *c)
{
    long pfn = c->alloc_pages(c->order);
    struct slab *s;
    unsigned i;
    if (pfn < 0)
        return NULL;
    s = calloc(1, sizeof(*s));
    s->free = malloc(c->num * sizeof(unsigned));
    s->live = calloc(c->num, 1);
    s->pfn = (unsigned long)pfn;
    for (i = 0; i < c->num; i++)
        s->free[i] = c->num - 1 - i;   /* object 0 on top */
    s->nfree = c->num;
    s->next = c->slabs;
    c->slabs = s;
    return s;
}

static unsigned long slab_start(struct slab *s)
{
    return s->pfn * MMCHECK_PAGE_SIZE;
}

long kmem_cache_alloc(struct kmem_cache *c)
{
    struct slab *s;
    unsigned i;
    for (s = c->slabs; s && !s->nfree; s = s->next)
        ;
    if (!s && !(s = cache_grow(c)))
        return -1;
    i = s->free[--s->nfree];
    s->live[i] = 1;
    s->inuse++;
    c->live_objs++;
    return (long)(slab_start(s) + i * c->objsize);
}

int kmem_cache_free(struct kmem_cache *c, unsigned long addr)
{
    struct slab *s;
    unsigned long off, end = MMCHECK_PAGE_SIZE << c->order;
    for (s = c->slabs; s; s = s->next) {
        if (addr < slab_start(s) || addr - slab_start(s) >= end)
            continue;
        off = addr - slab_start(s);
        /* BUG: no check of live[]: a double free pushes the index twice */
        if (off % c->objsize || off / c->objsize >= c->num)
            return -EINVAL;
        s->live[off / c->objsize] = 0;
        s->free[s->nfree++] = off / c->objsize;
        s->inuse--;
        c->live_objs--;
        return 0;
    }
    return -EINVAL;
}

long kmem_cache_shrink(struct kmem_cache *c)
{
    struct slab **p = &c->slabs, *s;
    long given = 0;
    while ((s = *p)) {
        if (s->inuse) {
            p = &s->next;
            continue;
        }
        *p = s->next;
        c->free_pages(s->pfn, c->order);
        given += 1L << c->order;
        free(s->free);
        free(s->live);
        free(s);
    }
    return given;
}

int kmem_cache_destroy(struct kmem_cache *c)
{
    if (c->live_objs)
        return -EBUSY;
    kmem_cache_shrink(c);
    free(c);
    return 0;
}

int kmem_cache_slabinfo(struct kmem_cache *c, struct slabinfo *info)
{
    struct slab *s;
    info->num_slabs = info->active_slabs = 0;
    for (s = c->slabs; s; s = s->next) {
        info->num_slabs++;
        info->active_slabs += s->inuse > 0;
    }
    info->active_objs = c->live_objs;
    info->objsize = c->objsize;
    info->objperslab = c->num;
    info->pagesperslab = 1UL << c->order;
    info->num_objs = info->num_slabs * c->num;
    return 0;
}
