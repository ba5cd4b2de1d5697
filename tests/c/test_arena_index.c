/* The arena index (csrc/arena.c, mheap.h's heap_arena_of and span_of):
 * arenaIndex, the L1 and L2 levels on ports with and without an L1
 * level, page -> span entries, the page bitmaps, the metadata a growth
 * prepares before anything moves, and sys_limit's growth test.
 *
 * Internal views of real (virtual) heaps; the expected indices are
 * computed here from Go's formulas (design §3.2).
 * Go 1.13: src/runtime/mheap.go (arenaIndex, spanOf, pageIndexOf,
 *          heapArena), malloc.go (sysAlloc's metadata).
 * Differs from Go: page_freed (double frees of large objects), metadata
 *          made before a growth and refused whole (design §5.7).
 * Locking: single-threaded; the heap lock where the code requires it.
 */
#include <inttypes.h>
#include <string.h>

#include "check.h"
#include "goalloc.h"
#include "mheap.h"

#define MiB ((uint64_t)1 << 20)
#define B ((ga_addr)0xc000000000)

static mheap *
new_heap(const char *goos, const char *goarch, uint64_t sys_limit)
{
    ga_options o;
    ga_options_init(&o);
    o.goos = goos;
    o.goarch = goarch;
    o.backing = GA_BACKING_VIRTUAL;
    o.sys_limit = sys_limit;
    ga_status st;
    char err[256];
    mheap *h = ga_heap_new(&o, &st, err, sizeof(err));
    if (!CHECK_MSG(h != NULL, "%s", err)) {
        exit(1);
    }
    return h;
}

static ga_addr
alloc(mheap *h, uint64_t size)
{
    ga_addr a = 0;
    CHECK(ga_malloc(h, 0, size, false, &a) == GA_OK);
    return a;
}

/* linux/amd64: no L1 level, 2^22 L2 entries of 64 MiB arenas from
 * arenaBaseOffset 2^47; the L2 map is made with the first arena. */
static void
test_index_amd64(void)
{
    mheap *h = new_heap("linux", "amd64", 0);
    CHECK(h->arenas != NULL && h->arenas[0] == NULL);
    CHECK(heap_arena_of(h, B) == NULL && span_of(h, B) == NULL);
    ga_addr a = alloc(h, 100000); /* 13 pages */
    CHECK(a == B && h->arenas[0] != NULL);
    uint64_t idx = (a + ((uint64_t)1 << 47)) >> 26;
    CHECK(idx == 0x203000 && l1_of(h, idx) == 0 && l2_of(h, idx) == idx);
    heap_arena *ha = h->arenas[0][idx];
    CHECK(ha != NULL && heap_arena_of(h, a) == ha &&
          heap_arena_of(h, a + 64 * MiB - 1) == ha);
    CHECK(heap_arena_of(h, a + 64 * MiB) == NULL &&
          heap_arena_of(h, a - 1) == NULL);
    /* outside arenaL1Bits + arenaL2Bits: no arena, no fault */
    CHECK(heap_arena_of(h, (ga_addr)1 << 47) == NULL);
    CHECK(heap_arena_of(h, UINT64_MAX) == NULL);
    mspan *s = span_of(h, a);
    CHECK(s != NULL && s->start_addr == a && s->npages == 13);
    uint64_t wrong = 0;
    for (uint64_t p = 0; p < 13; p++) {
        wrong += span_of(h, a + p * PAGE_SIZE + 5) != s;
        wrong += page_index(h, a + p * PAGE_SIZE) != p;
    }
    CHECK(wrong == 0);
    /* pageInUse marks an in-use span's first page only */
    CHECK(arena_page_in_use(h, a) && !arena_page_in_use(h, a + PAGE_SIZE));
    CHECK(!arena_page_freed(h, a));
    CHECK(ga_free(h, a) == GA_OK);
    CHECK(!arena_page_in_use(h, a) && arena_page_freed(h, a));
    /* a free span records its ends */
    mspan *f = span_of(h, a);
    CHECK(f != NULL && f->state == MSPAN_FREE &&
          span_of(h, f->start_addr + (f->npages - 1) * PAGE_SIZE) == f);
    /* handing the page out again forgets the freed mark */
    CHECK(alloc(h, 40000) == a);
    CHECK(!arena_page_freed(h, a) && arena_page_in_use(h, a));
    ga_heap_free(h);
}

/* windows/amd64: 4 MiB arenas, 6 L1 bits over 20 L2 bits: the first
 * arena makes one L2 map, at its L1 entry; linux/386: no offset. */
static void
test_index_l1(void)
{
    mheap *h = new_heap("windows", "amd64", 0);
    ga_addr a = alloc(h, 100000);
    uint64_t idx = (a + ((uint64_t)1 << 47)) >> 22;
    uint64_t l1 = idx >> 20, l2 = idx & ((1u << 20) - 1);
    CHECK(a == B && l1_of(h, idx) == l1 && l2_of(h, idx) == l2 && l1 != 0);
    uint64_t maps = 0;
    for (uint64_t i = 0; i < 64; i++) {
        maps += h->arenas[i] != NULL;
    }
    CHECK(maps == 1 && h->arenas[l1] != NULL);
    CHECK(h->arenas[l1] != NULL && h->arenas[l1][l2] == heap_arena_of(h, a));
    CHECK(heap_arena_of(h, a + 4 * MiB) == NULL);
    ga_heap_free(h);

    h = new_heap("linux", "386", 0);
    a = alloc(h, 100000);
    CHECK(a == 0x08400000 && h->lookup.base_offset == 0);
    CHECK(heap_arena_of(h, a) == h->arenas[0][a >> 22]);
    CHECK(heap_arena_of(h, (ga_addr)1 << 32) == NULL);
    ga_heap_free(h);
}

/* A growth's metadata is planned and made before the heap changes:
 * made and dropped, it leaves the heap as it was; past metadata_limit
 * or with the process out of memory it is refused with a reason. */
static void
test_prep(void)
{
    mheap *h = new_heap("linux", "amd64", 0);
    ga_addr a = alloc(h, 100000);
    uint64_t hash = ga_digest(h), meta = h->meta_bytes;
    mheap_lock(h);
    arena_prep p;
    CHECK(arena_prep_plan(h, a + 64 * MiB, 128 * MiB, &p));
    CHECK(p.first == 0x203001 && p.n == 2 && p.l1_first == 0 && p.nl1 == 1);
    CHECK(p.bytes > 2 * 8192 * 8 && p.bytes < 2 * (8192 * 8 + 4096));
    CHECK(arena_prep_make(h, &p) && p.block != NULL);
    arena_prep_free(&p);
    h->meta.fail_at = 1;
    CHECK(arena_prep_plan(h, a + 64 * MiB, 64 * MiB, &p));
    CHECK(!arena_prep_make(h, &p) && h->oom_reason != NULL);
    h->meta_limit = h->meta_bytes + 1;
    CHECK(!arena_prep_plan(h, a + 64 * MiB, 64 * MiB, &p));
    CHECK(h->oom_reason != NULL &&
          strstr(h->oom_reason, "metadata_limit") != NULL);
    h->meta_limit = 0;
    mheap_unlock(h);
    CHECK(ga_digest(h) == hash && h->meta_bytes == meta);
    char msg[300];
    CHECK_MSG(ga_verify(h, msg, sizeof(msg)), "%s", msg);
    ga_heap_free(h);
}

/* sys_limit: growth into curArena needs no address space; a growth
 * that maps arenas must fit whole arenas under the limit. */
static void
test_can_grow(void)
{
    mheap *h = new_heap("linux", "amd64", 128 * MiB);
    CHECK(mheap_can_grow(h, 8192 * 2)); /* nothing mapped yet */
    CHECK(!mheap_can_grow(h, 8192 * 2 + 1));
    CHECK(h->oom_reason != NULL && strstr(h->oom_reason, "sys_limit"));
    alloc(h, 100000); /* one arena; curArena holds the rest */
    CHECK(mheap_can_grow(h, 8192 - 13));
    CHECK(mheap_can_grow(h, 8192)); /* a second arena: 128 MiB */
    CHECK(!mheap_can_grow(h, 8192 + 1));
    ga_heap_free(h);
    /* a limit one byte short of an arena refuses the first page */
    h = new_heap("linux", "amd64", 64 * MiB - 1);
    CHECK(!mheap_can_grow(h, 1));
    ga_heap_free(h);
}

int
main(void)
{
    CHECK_RUN(test_index_amd64());
    CHECK_RUN(test_index_l1());
    CHECK_RUN(test_prep());
    CHECK_RUN(test_can_grow());
    int failed = check_summary("arena_index");
    return failed > 255 ? 255 : failed;
}
