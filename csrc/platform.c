/* Platforms: the GOOS/GOARCH choices mallocinit depends on.
 *
 * The table of Go 1.13 ports goalloc models and the formulas of
 * malloc.go that turn a port into address-space constants.
 * Go 1.13: src/runtime/malloc.go constants, `go tool dist list`.
 * Differs from Go: js/wasm and nacl are refused (their address spaces are
 *          not mmap-like); OS pages are 4 KiB everywhere (darwin/arm64's
 *          16 KiB pages, where Go's realign matters, are not modelled).
 * Locking: none.
 */
#include "platform.h"

#include <stdio.h>
#include <string.h>

#include "arith.h"

typedef struct port {
    const char *goos;
    const char *goarch;
    bool race_ok; /* Go 1.13 supports -race on this port */
} port;

static const port ports[] = {
    {"aix", "ppc64", false},      {"android", "386", false},
    {"android", "amd64", false},  {"android", "arm", false},
    {"android", "arm64", false},  {"darwin", "386", false},
    {"darwin", "amd64", true},    {"darwin", "arm", false},
    {"darwin", "arm64", false},   {"dragonfly", "amd64", false},
    {"freebsd", "386", false},    {"freebsd", "amd64", true},
    {"freebsd", "arm", false},    {"illumos", "amd64", false},
    {"linux", "386", false},      {"linux", "amd64", true},
    {"linux", "arm", false},      {"linux", "arm64", true},
    {"linux", "mips", false},     {"linux", "mips64", false},
    {"linux", "mips64le", false}, {"linux", "mipsle", false},
    {"linux", "ppc64", false},    {"linux", "ppc64le", true},
    {"linux", "s390x", false},    {"netbsd", "386", false},
    {"netbsd", "amd64", true},    {"netbsd", "arm", false},
    {"netbsd", "arm64", false},   {"openbsd", "386", false},
    {"openbsd", "amd64", false},  {"openbsd", "arm", false},
    {"openbsd", "arm64", false},  {"plan9", "386", false},
    {"plan9", "amd64", false},    {"plan9", "arm", false},
    {"solaris", "amd64", false},  {"windows", "386", false},
    {"windows", "amd64", true},   {"windows", "arm", false},
};

static const port *
find_port(const char *goos, const char *goarch)
{
    for (size_t i = 0; i < sizeof(ports) / sizeof(ports[0]); i++) {
        if (strcmp(ports[i].goos, goos) == 0 &&
            strcmp(ports[i].goarch, goarch) == 0) {
            return &ports[i];
        }
    }
    return NULL;
}

static bool
is_32bit(const char *goarch)
{
    return strcmp(goarch, "386") == 0 || strcmp(goarch, "arm") == 0 ||
           strcmp(goarch, "mips") == 0 || strcmp(goarch, "mipsle") == 0;
}

/* internal/cpu's CacheLinePadSize for goarch (cpu_<arch>.go), which
 * the runtime's persistentallocs use as their alignment. */
static uint64_t
cache_line_pad_size(const char *goarch)
{
    if (strcmp(goarch, "arm") == 0 || strncmp(goarch, "mips", 4) == 0) {
        return 32;
    }
    if (strncmp(goarch, "ppc64", 5) == 0) {
        return 128;
    }
    if (strcmp(goarch, "s390x") == 0) {
        return 256;
    }
    return 64; /* 386, amd64, arm64 */
}

/* The arm of mallocinit's hint switch the port takes, in Go's order:
 * darwin/arm64, arm64, aix, race, default (race is checked after arm64,
 * so race on arm64 uses the arm64 hints). */
static arena_hint_kind
hint_kind_of(const char *goos, const char *goarch, bool race)
{
    if (is_32bit(goarch)) {
        return HINTS_32BIT;
    }
    if (strcmp(goarch, "arm64") == 0) {
        return strcmp(goos, "darwin") == 0 ? HINTS_DARWIN_ARM64 : HINTS_ARM64;
    }
    if (strcmp(goos, "aix") == 0) {
        return HINTS_AIX;
    }
    return race ? HINTS_RACE : HINTS_DEFAULT;
}

/* Go's struct layouts, field by field, for pointer size ptr.  On 32-bit
 * ports Go aligns uint64 fields to 4 bytes. */
static void
set_struct_sizes(platform *p, int num_stack_orders)
{
    uint64_t ptr = p->ptr_size;
    /* mspan: 8 word fields, allocCache (8), 2 bitmap pointers, sweepgen,
     * divMul..scavenged (12 bytes), elemsize, limit, speciallock,
     * specials. */
    uint64_t span = 8 * ptr + 8 + 2 * ptr + 4 + 12;
    span = round_up(span, ptr) + 4 * ptr;
    p->sizeof_mspan = span;
    /* mcache: 5 words, alloc[134], stackcache[orders]{list, size},
     * local_largefree, local_nlargefree, local_nsmallfree[67], flushGen */
    uint64_t cache = (5 + NUM_SPAN_CLASSES + 2 * (uint64_t)num_stack_orders +
                      2 + NUM_SIZE_CLASSES) *
                         ptr +
                     4;
    p->sizeof_mcache = round_up(cache, ptr);
    /* treapNode: 6 words, priority (uint32), types (uint32) */
    p->sizeof_treap_node = 6 * ptr + 8;
    /* arenaHint: addr, down (bool, padded), next */
    p->sizeof_arena_hint = 3 * ptr;
    /* special {next, offset uint16, kind byte}, padded to a word */
    uint64_t special = ptr + round_up(4, ptr);
    p->sizeof_special_finalizer = special + 4 * ptr;
    p->sizeof_special_profile = special + ptr;
    /* heapArena: bitmap (2 bits per word), spans, pageInUse, pageMarks */
    uint64_t bitmap = p->heap_arena_bytes / (ptr * 8 / 2);
    p->sizeof_heap_arena = bitmap + p->pages_per_arena * ptr +
                           2 * (p->pages_per_arena / 8);
}

bool
platform_init(platform *p, const char *goos, const char *goarch, bool race,
              char *err, size_t errlen)
{
    memset(p, 0, sizeof(*p));
    if (strcmp(goarch, "wasm") == 0 || strcmp(goos, "nacl") == 0) {
        snprintf(err, errlen,
                 "%s/%s is not modelled: its address space is not mmap-like",
                 goos, goarch);
        return false;
    }
    const port *pt = find_port(goos, goarch);
    if (pt == NULL) {
        snprintf(err, errlen, "unknown Go 1.13 platform %s/%s", goos, goarch);
        return false;
    }
    if (race && !pt->race_ok) {
        snprintf(err, errlen, "-race is not supported on %s/%s in Go 1.13",
                 goos, goarch);
        return false;
    }
    snprintf(p->goos, sizeof(p->goos), "%s", goos);
    snprintf(p->goarch, sizeof(p->goarch), "%s", goarch);
    p->race = race;
    p->hint_kind = hint_kind_of(goos, goarch, race);

    bool aix = strcmp(goos, "aix") == 0;
    bool windows = strcmp(goos, "windows") == 0;
    bool mips32 = strcmp(goarch, "mips") == 0 || strcmp(goarch, "mipsle") == 0;
    /* maxAlloc = (1 << heapAddrBits) - (1 - _64bit): on 32-bit ports one
     * less, as the address space's size does not fit a uintptr; mips and
     * mipsle have 31 heap address bits, so there it is 2^31 - 1. */
    if (is_32bit(goarch)) {
        p->ptr_size = 4;
        p->heap_addr_bits = mips32 ? 31 : 32;
        p->log_heap_arena_bytes = 22;
        p->max_alloc = ((uint64_t)1 << p->heap_addr_bits) - 1;
    }
    else {
        p->ptr_size = 8;
        p->heap_addr_bits = aix ? 60 : 48;
        p->log_heap_arena_bytes = aix ? 28 : (windows ? 22 : 26);
        p->max_alloc = (uint64_t)1 << p->heap_addr_bits;
    }
    p->arena_l1_bits = aix ? 12 : (windows && p->ptr_size == 8 ? 6 : 0);
    p->arena_l2_bits = p->heap_addr_bits - p->log_heap_arena_bytes -
                       p->arena_l1_bits;
    p->arena_base_offset = strcmp(goarch, "amd64") == 0 ? (ga_addr)1 << 47 : 0;
    p->heap_arena_bytes = (ga_addr)1 << p->log_heap_arena_bytes;
    p->pages_per_arena = p->heap_arena_bytes / PAGE_SIZE;
    /* amd64 user space ends at 2^47; elsewhere the heap bits bound it. */
    p->addr_space_end = strcmp(goarch, "amd64") == 0
                            ? (ga_addr)1 << 47
                            : (ga_addr)1 << p->heap_addr_bits;
    p->phys_page_size = 4096;
    p->phys_huge_page_size = strcmp(goos, "linux") == 0 ? 2u << 20 : 0;
    p->cache_line_size = cache_line_pad_size(goarch);

    int orders = 4;
    if (windows) {
        orders -= (int)p->ptr_size / 4;
    }
    if (strcmp(goos, "plan9") == 0) {
        orders -= 1;
    }
    set_struct_sizes(p, orders);
    return true;
}
