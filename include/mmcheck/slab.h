/* A slab cache, C form of the contract's KmemCache (docs/contract.md,
 * "C submissions"). Build a submission against it:
 *
 *     cc -shared -fPIC -I include -o cache.so cache.c
 *
 * mmcheck does that itself for `mmcheck check --impl cache.c`.
 *
 * Addresses are the contract's byte addresses, pfn * PAGE_SIZE + offset: the
 * pages a cache takes are page frame numbers handed out by the checker, not
 * memory the C code may touch. Keep the cache's own bookkeeping in memory
 * from malloc(). Every function returns a negative errno where the Python
 * contract raises ValueError (-EINVAL; -EBUSY for destroying a cache with
 * live objects), and leaves the cache as it was.
 */
#ifndef MMCHECK_SLAB_H
#define MMCHECK_SLAB_H

#include <errno.h>

#define MMCHECK_PAGE_SIZE 4096UL

/* The page allocator a cache takes its slabs from (the contract's `pages`). */
typedef long (*alloc_pages_t)(unsigned order);              /* pfn, or -1 */
typedef int (*free_pages_t)(unsigned long pfn, unsigned order); /* 0 or -EINVAL */

/* One /proc/slabinfo row, counted as the contract says. */
struct slabinfo {
    unsigned long active_objs;   /* live objects */
    unsigned long num_objs;      /* num_slabs * objperslab */
    unsigned long objsize;       /* size rounded up to align */
    unsigned long objperslab;
    unsigned long pagesperslab;  /* 2**order of every slab */
    unsigned long active_slabs;  /* slabs with at least one live object */
    unsigned long num_slabs;     /* slabs held from the page allocator */
};

struct kmem_cache;

/* A cache of `size`-byte objects aligned to `align` (a power of two, which
 * may exceed a page); NULL when size < 1 or align is not a power of two. */
struct kmem_cache *kmem_cache_create(const char *name, unsigned long size,
                                     unsigned long align, alloc_pages_t alloc_pages,
                                     free_pages_t free_pages);

/* The byte address of a free object, aligned to align, inside pages the cache
 * holds; -1 only when alloc_pages gave no page. */
long kmem_cache_alloc(struct kmem_cache *cachep);

/* 0, or -EINVAL for an address that is not a live object of this cache. */
int kmem_cache_free(struct kmem_cache *cachep, unsigned long addr);

/* Give every completely free slab back; how many pages that was. */
long kmem_cache_shrink(struct kmem_cache *cachep);

/* 0 after giving every page back (and freeing the cache), -EBUSY while
 * objects are live (nothing changes). mmcheck calls nothing on a cache
 * after a successful destroy. */
int kmem_cache_destroy(struct kmem_cache *cachep);

/* Fill *info; 0. */
int kmem_cache_slabinfo(struct kmem_cache *cachep, struct slabinfo *info);

#endif
