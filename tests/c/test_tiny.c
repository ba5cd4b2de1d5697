/* The tiny allocator's marks: made per span on demand, what they record,
 * who frees a block, and that verify checks them.
 *
 * A span of class 5 (16-byte noscan) has no tiny marks until it serves a
 * tiny block; then 6 bytes per slot.  A block's marks record where each
 * tiny object starts and ends and which were freed; the P's drop and the
 * frees set bits of one word atomically, and exactly one of them frees
 * the block (a block of sixteen 1-byte objects is dropped under the
 * lock its frees hold).  16-byte noscan objects in the same spans are plain
 * objects. Go 1.13: src/runtime/malloc.go (the tiny branch of mallocgc).
 * Differs from Go: explicit free of tiny objects (design §6.4).
 * Locking: single-threaded (test_threads.c races the drop and the frees).
 */
#include <inttypes.h>
#include <string.h>

#include "check.h"
#include "goalloc.h"
#include "mbitmap.h"
#include "mheap.h"
#include "tiny.h"

#define SLOTS 512 /* 16-byte slots of one 8 KiB span */

static ga_heap *
new_heap(ga_backing backing, int procs)
{
    ga_options o;
    ga_options_init(&o);
    o.backing = backing;
    o.procs = procs;
    ga_status st;
    char err[256];
    ga_heap *h = ga_heap_new(&o, &st, err, sizeof(err));
    if (!CHECK_MSG(h != NULL, "%s", err)) {
        exit(1);
    }
    return h;
}

static ga_addr
alloc(ga_heap *h, uint64_t size, bool noscan)
{
    ga_addr a = 0;
    CHECK(ga_malloc(h, 0, size, noscan, &a) == GA_OK);
    return a;
}

static void
verify_ok(ga_heap *h)
{
    char msg[300];
    CHECK_MSG(ga_verify(h, msg, sizeof(msg)), "%s", msg);
}

/* verify_fails: verify reports a message containing want. */
static void
verify_fails(ga_heap *h, const char *want)
{
    char msg[300] = "";
    bool ok = ga_verify(h, msg, sizeof(msg));
    CHECK_MSG(!ok && strstr(msg, want) != NULL, "verify said \"%s\"",
              ok ? "ok" : msg);
}

static tiny_block
block_marks(ga_heap *h, ga_addr a)
{
    mspan *s = span_of(h, a);
    return tiny_block_of(s, (a - mspan_base(s)) / TINY_SIZE);
}

/* The freed word of a block dropped with starts: every spare offset. */
static uint16_t
dropped_word(uint32_t starts)
{
    return (uint16_t)(~starts & TINY_OFFSETS);
}

static uint8_t
slot_state(ga_heap *h, ga_addr a)
{
    mspan *s = span_of(h, a);
    uint8_t states[SLOTS];
    ga_span_objects(h, mspan_base(s), states, NULL, SLOTS);
    return states[(a - mspan_base(s)) / TINY_SIZE];
}

/* A class-5 span of 16-byte objects only has no tiny marks; its first
 * tiny block makes them, 6 bytes per slot; they go with the span. */
static void
test_marks_on_demand(ga_backing backing)
{
    ga_heap *h = new_heap(backing, 1);
    ga_addr plain[SLOTS + 10];
    for (int i = 0; i < SLOTS + 10; i++) {
        plain[i] = alloc(h, 16, true);
    }
    ga_heap_info in;
    ga_heap_info_get(h, &in);
    /* 3 bitmaps and one requested size (all asked for 16), padded to 8 */
    uint64_t span_block = mspan_bits_bytes(TINY_SPAN_CLASS, SLOTS);
    CHECK_MSG(span_block == 3 * 64 + 8, "%zu", (size_t)span_block);
    CHECK(mspan_bits_bytes(make_span_class(2, false), SLOTS) ==
          3 * 64 + 2 * SLOTS); /* 16-byte objects with pointers */
    CHECK(in.span_meta_bytes == 2 * span_block);
    CHECK_MSG(in.tiny_meta_bytes == 0, "%" PRIu64, in.tiny_meta_bytes);
    CHECK(span_of(h, plain[0])->tiny_marks == NULL);
    ga_addr t = alloc(h, 3, true);
    mspan *ts = span_of(h, t);
    CHECK(ts == span_of(h, plain[SLOTS]) && ts->tiny_marks != NULL);
    CHECK(span_of(h, plain[0])->tiny_marks == NULL);
    ga_heap_info_get(h, &in);
    CHECK_MSG(in.tiny_meta_bytes == SLOTS * 6, "%" PRIu64, in.tiny_meta_bytes);
    verify_ok(h);
    /* everything freed: both spans go home with their metadata */
    CHECK(ga_free(h, t) == GA_OK);
    for (int i = 0; i < SLOTS + 10; i++) {
        CHECK(ga_free(h, plain[i]) == GA_OK);
    }
    CHECK(ga_flush(h) == GA_OK);
    ga_heap_info_get(h, &in);
    CHECK(in.span_meta_bytes == 0 && in.tiny_meta_bytes == 0);
    verify_ok(h);
    ga_heap_free(h);
}

/* Starts and ends: 1, 2, 4 and 8 bytes at offsets 0, 2, 4 and 8. */
static void
test_starts_and_ends(void)
{
    ga_heap *h = new_heap(GA_BACKING_VIRTUAL, 1);
    ga_addr a = alloc(h, 1, true);
    ga_addr b = alloc(h, 2, true);
    ga_addr c = alloc(h, 4, true);
    ga_addr d = alloc(h, 8, true);
    CHECK(b == a + 2 && c == a + 4 && d == a + 8);
    tiny_block m = block_marks(h, a);
    if (!CHECK(m.marks != NULL)) {
        return;
    }
    uint32_t starts = TINY_START(0) | TINY_START(2) | TINY_START(4) |
                      TINY_START(8);
    /* the object on the last byte has no end mark */
    uint32_t ends = TINY_END(0) | TINY_END(3) | TINY_END(7);
    volatile uint64_t last = 15;
    CHECK(TINY_END(last) == 0);
    CHECK_MSG(*m.marks == (starts | ends), "marks 0x%x", *m.marks);
    CHECK(*m.freed == 0); /* current: not dropped */
    CHECK(tiny_size_at(*m.marks, 0) == 1 && tiny_size_at(*m.marks, 2) == 2 &&
          tiny_size_at(*m.marks, 4) == 4 && tiny_size_at(*m.marks, 8) == 8);
    uint64_t size = 0;
    CHECK(ga_object_extent(h, c, &size) == GA_OK && size == 4);
    CHECK(ga_object_extent(h, d, &size) == GA_OK && size == 8);
    CHECK(ga_free(h, c) == GA_OK);
    CHECK(*m.freed == TINY_START(4));
    CHECK(ga_object_extent(h, c, &size) == GA_ENOTOBJECT);
    CHECK(ga_free(h, c) == GA_EDOUBLEFREE);
    CHECK(ga_free(h, a + 1) == GA_ENOTOBJECT);
    CHECK(*m.freed == TINY_START(4)); /* refused frees change nothing */
    ga_addr e = alloc(h, 1, true);    /* no room: a new block; a's dropped */
    CHECK(e == a + TINY_SIZE);
    CHECK(*m.freed == (TINY_START(4) | dropped_word(starts)));
    CHECK(tiny_is_dropped(*m.marks, *m.freed));
    verify_ok(h);
    verify_ok(h);
    ga_heap_free(h);
}

/* Sixteen 1-byte objects fill a block, which leaves no spare offset to
 * mark the drop with: it is dropped under the lock and marked full.  All
 * freed while it is current, the block lives until the P drops it, and
 * the drop frees it; with one object left, that object's free does. */
static void
test_drop_frees_an_empty_block(void)
{
    ga_heap *h = new_heap(GA_BACKING_VIRTUAL, 1);
    ga_addr a[TINY_SIZE];
    for (int i = 0; i < TINY_SIZE; i++) {
        a[i] = alloc(h, 1, true);
        CHECK(a[i] == a[0] + (ga_addr)i);
    }
    tiny_block m = block_marks(h, a[0]);
    CHECK(m.marks != NULL && (*m.marks & TINY_OFFSETS) == TINY_OFFSETS);
    CHECK((*m.marks & TINY_ENDS) == (TINY_ENDS & ~TINY_END(15)));
    for (int i = 0; i < TINY_SIZE; i++) {
        CHECK(ga_free(h, a[i]) == GA_OK);
    }
    CHECK(slot_state(h, a[0]) == GA_SLOT_LIVE); /* still current */
    verify_ok(h);
    ga_addr b = alloc(h, 1, true); /* no room: a new block, drop a's */
    CHECK(b == a[0] + TINY_SIZE);
    CHECK(slot_state(h, a[0]) == GA_SLOT_FREED);
    CHECK(*m.freed == TINY_OFFSETS && (*m.marks & TINY_FULL_DROPPED));
    for (int i = 0; i < TINY_SIZE; i++) {
        CHECK(ga_free(h, a[i]) == GA_EDOUBLEFREE);
    }
    ga_mem_stats ms;
    ga_read_mem_stats(h, &ms);
    CHECK(ms.heap_objects == 1 && ms.mallocs == 17 && ms.frees == 16);
    verify_ok(h);
    /* b's block, full again, dropped with b itself live */
    ga_addr bb[TINY_SIZE] = {b};
    for (int i = 1; i < TINY_SIZE; i++) {
        bb[i] = alloc(h, 1, true);
    }
    for (int i = 1; i < TINY_SIZE; i++) {
        CHECK(ga_free(h, bb[i]) == GA_OK);
    }
    alloc(h, 1, true); /* drops bb's block: dropped full, b live */
    tiny_block mb = block_marks(h, b);
    CHECK((*mb.marks & TINY_FULL_DROPPED) && *mb.freed == 0xFFFE);
    CHECK(slot_state(h, b) == GA_SLOT_LIVE);
    verify_ok(h);
    CHECK(ga_free(h, b) == GA_OK); /* its last object: frees the block */
    CHECK(slot_state(h, b) == GA_SLOT_FREED);
    CHECK(ga_free(h, b) == GA_EDOUBLEFREE);
    verify_ok(h);
    ga_heap_free(h);
}

/* A block replaced while it holds a live object is dropped; the free of
 * that object frees it. */
static void
test_free_after_drop_frees_the_block(void)
{
    ga_heap *h = new_heap(GA_BACKING_VIRTUAL, 1);
    ga_addr a = alloc(h, 12, true);
    ga_addr b = alloc(h, 6, true); /* 6 < 12: b's block replaces a's */
    tiny_block m = block_marks(h, a);
    CHECK(m.marks != NULL && *m.freed == dropped_word(TINY_START(0)));
    CHECK(*block_marks(h, b).freed == 0);
    ga_addr c = alloc(h, 12, true); /* 6 + 12 > 16, 12 >= 6: b stays */
    CHECK(*block_marks(h, c).freed == dropped_word(TINY_START(0)));
    CHECK(ga_free(h, a) == GA_OK);
    CHECK(slot_state(h, a) == GA_SLOT_FREED);
    CHECK(ga_free(h, c) == GA_OK);
    CHECK(slot_state(h, c) == GA_SLOT_FREED);
    CHECK(slot_state(h, b) == GA_SLOT_LIVE);
    verify_ok(h);
    ga_heap_free(h);
}

/* A slot that was a tiny block and is now a 16-byte object: its old
 * marks do not make the object's interior a double free, and a free of
 * the object takes the slot path. */
static void
test_slot_reused_by_a_plain_object(void)
{
    ga_heap *h = new_heap(GA_BACKING_VIRTUAL, 1);
    ga_addr keep = alloc(h, 16, true); /* keeps the span in use */
    ga_addr a = alloc(h, 4, true);
    ga_addr a2 = alloc(h, 4, true);
    CHECK(a2 == a + 4);
    CHECK(ga_free(h, a) == GA_OK && ga_free(h, a2) == GA_OK);
    CHECK(ga_flush(h) == GA_OK); /* drop: the block is freed and swept */
    CHECK(ga_free(h, a2) == GA_EDOUBLEFREE);
    ga_addr p = alloc(h, 16, true); /* the lowest free slot: a's */
    CHECK(p == a);
    CHECK(block_marks(h, p).marks == NULL);
    CHECK(ga_free(h, a2) == GA_ENOTOBJECT);
    uint64_t size = 0;
    CHECK(ga_object_extent(h, p, &size) == GA_OK && size == 16);
    CHECK(ga_free(h, p) == GA_OK);
    CHECK(ga_free(h, p) == GA_EDOUBLEFREE);
    CHECK(ga_free(h, a2) == GA_ENOTOBJECT);
    CHECK(ga_free(h, keep) == GA_OK);
    verify_ok(h);
    ga_heap_free(h);
}

/* P 0's lock-free free into its own spans remembers the span of its
 * last free (the free hint).  A span of 16-byte objects that then serves
 * a tiny block must leave the hint: a free at a block's first byte is a
 * tiny object's, not the slot's. */
static void
test_free_hint_forgets_a_span_with_tiny_blocks(void)
{
    ga_heap *h = new_heap(GA_BACKING_VIRTUAL, 1);
    ga_addr keep = alloc(h, 16, true);
    ga_addr p = alloc(h, 16, true);
    CHECK(ga_free_p(h, 0, p) == GA_OK); /* lock-free: the hint is set */
    ga_addr a = alloc(h, 4, true);      /* the same span's first block */
    ga_addr b = alloc(h, 4, true);
    CHECK(span_of(h, a) == span_of(h, keep) && b == a + 4);
    CHECK(ga_free_p(h, 0, a) == GA_OK); /* a's, not the block's */
    CHECK(slot_state(h, a) == GA_SLOT_LIVE);
    tiny_block m = block_marks(h, a);
    CHECK(m.marks != NULL && tiny_live(m) == TINY_START(4));
    CHECK(ga_free_p(h, 0, a) == GA_EDOUBLEFREE);
    CHECK(ga_free_p(h, 0, b) == GA_OK);
    CHECK(ga_free_p(h, 0, keep) == GA_OK);
    verify_ok(h);
    ga_heap_free(h);
}

/* verify checks the marks, the drop flag, the requested sizes that tell
 * blocks from objects and the metadata counters. */
static void
test_verify_checks_the_marks(void)
{
    ga_heap *h = new_heap(GA_BACKING_VIRTUAL, 1);
    ga_addr a = alloc(h, 4, true);
    ga_addr b = alloc(h, 4, true);
    ga_addr o = alloc(h, 16, true);
    (void)b;
    mspan *s = span_of(h, a);
    tiny_block m = block_marks(h, a);
    uint64_t oi = (o - mspan_base(s)) / TINY_SIZE;
    verify_ok(h);

    uint16_t saved = *m.freed;
    *m.freed |= TINY_START(9); /* no object started at 9 */
    verify_fails(h, "freed marks where no object started");
    /* current, yet marked dropped */
    *m.freed = saved | dropped_word(TINY_START(0) | TINY_START(4));
    verify_fails(h, "marked dropped");
    *m.freed = saved;

    uint32_t marks = *m.marks;
    *m.marks |= TINY_START(2); /* overlaps the object at 0 */
    verify_fails(h, "overlaps");
    *m.marks = marks & ~TINY_END(3); /* the object at 0 runs into 4's */
    verify_fails(h, "overlaps another or has no end");
    *m.marks = marks | TINY_END(12); /* an end no object has */
    verify_fails(h, "end marks");
    *m.marks = marks | TINY_FULL_DROPPED; /* full, yet it has room */
    verify_fails(h, "has room");
    *m.marks = marks;
    verify_ok(h);

    tiny_block ob = tiny_block_at(s, s->tiny_marks, oi);
    *ob.marks = TINY_START(4); /* a live slot with marks is a block... */
    verify_fails(h, "has no object at offset 0");
    *ob.marks = 0;
    s->req_sizes[0] = 17; /* ... and a 16-byte slot cannot hold 17 */
    verify_fails(h, "requested size 17");
    s->req_sizes[0] = 16;

    h->tiny_meta_bytes += 8;
    verify_fails(h, "tiny_meta_bytes");
    h->tiny_meta_bytes -= 8;
    h->span_meta_bytes += 1;
    verify_fails(h, "span_meta_bytes");
    h->span_meta_bytes -= 1;
    verify_ok(h);
    ga_heap_free(h);
}

int
main(void)
{
    test_marks_on_demand(GA_BACKING_VIRTUAL);
    test_marks_on_demand(GA_BACKING_OS);
    test_starts_and_ends();
    test_drop_frees_an_empty_block();
    test_free_after_drop_frees_the_block();
    test_slot_reused_by_a_plain_object();
    test_free_hint_forgets_a_span_with_tiny_blocks();
    test_verify_checks_the_marks();
    return check_summary("tiny") != 0;
}
