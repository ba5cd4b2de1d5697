// Command go113 runs one goalloc allocation script on Go 1.13's own
// runtime and prints, as JSON, what the collector did: one record per GC
// cycle and the final MemStats.  tools/go113/regen.sh builds it with a
// go1.13.8 toolchain and runs every script of tools/go113/scripts.py;
// tests/test_gc_golden.py compares goalloc's GC mode with its output
// (docs/gc-golden.md).
//
// The script is a file of little-endian uint32 ops (scripts.py writes
// it): bit 31 set drops the object with the id in bits 0..30 (its slot
// is set to nil: the program loses its last reference); otherwise it
// allocates an object of bits 0..29 bytes, noscan if bit 30 is set
// ([]byte) or else a pointer slice of that many bytes (the size is a
// multiple of 8), into the next id's slot.
//
// Nothing on the measured path allocates but the script's objects: the
// script and the slots live in BSS (the slots are a GC root, as a global
// is), cycles are detected by reading runtime.memstats.numgc through a
// linkname after each allocation (runtime.ReadMemStats would flush the
// mcache, which changes what the allocator does next), and the
// per-cycle MemStats are read right after a cycle, when the cycle has
// just flushed the mcache itself.  What the runtime allocates for
// itself (its init, the mark worker goroutine, workbufs) is the noise the
// comparison's tolerances cover.
//
// Run it with GOMAXPROCS=1 GODEBUG=gcstoptheworld=1 GOGC=<n|off>.
package main

import (
	"encoding/json"
	"fmt"
	"os"
	"runtime"
	"syscall"
	"unsafe"
)

// mstats is the head of Go 1.13's runtime.mstats (mstats.go), down to
// heap_marked, to read the pacer's state without stopping the world.
type mstats struct {
	alloc, totalAlloc, sys, nlookup, nmalloc, nfree     uint64
	heapAlloc, heapSys, heapIdle, heapInuse             uint64
	heapReleased, heapObjects                           uint64
	stacksInuse, stacksSys, mspanInuse, mspanSys        uint64
	mcacheInuse, mcacheSys, buckhashSys, gcSys, otherSy uint64
	nextGC, lastGCUnix, pauseTotalNs                    uint64
	pauseNs, pauseEnd                                   [256]uint64
	numgc, numforcedgc                                  uint32
	gcCPUFraction                                       float64
	enablegc, debuggc                                   bool
	bySize                                              [67]struct {
		size           uint32
		nmalloc, nfree uint64
	}
	lastGCNanotime, tinyallocs, lastNextGC, lastHeapInuse uint64
	triggerRatio                                          float64
	gcTrigger, heapLive, heapScan, heapMarked             uint64
}

//go:linkname memstats runtime.memstats
var memstats mstats

const maxOps = 1 << 22

var (
	script [maxOps]uint32
	slots  [maxOps]unsafe.Pointer
	ms     runtime.MemStats
	cycles [1 << 14]record
)

// record is the collector's state after a cycle (or at the start and
// the end of the script).
type record struct {
	Op           int     `json:"op"` // index of the op after which it was read
	NumGC        uint32  `json:"num_gc"`
	NumForcedGC  uint32  `json:"num_forced_gc"`
	NextGC       uint64  `json:"next_gc"`
	GCTrigger    uint64  `json:"gc_trigger"`
	TriggerRatio float64 `json:"trigger_ratio"`
	HeapMarked   uint64  `json:"heap_marked"`
	HeapLive     uint64  `json:"heap_live"`
	HeapLiveOp   uint64  `json:"heap_live_before_op"`
	HeapAlloc    uint64  `json:"heap_alloc"`
	HeapInuse    uint64  `json:"heap_inuse"`
	HeapIdle     uint64  `json:"heap_idle"`
	HeapReleased uint64  `json:"heap_released"`
	HeapSys      uint64  `json:"heap_sys"`
	HeapObjects  uint64  `json:"heap_objects"`
	StackInuse   uint64  `json:"stack_inuse"`
	GCSys        uint64  `json:"gc_sys"`
}

// snap reads the pacer's fields and then MemStats.  ReadMemStats
// flushes the mcache; after a cycle it is empty already.
func snap(op int, liveBefore uint64) record {
	r := record{Op: op, NumGC: memstats.numgc, NextGC: memstats.nextGC,
		GCTrigger: memstats.gcTrigger, TriggerRatio: memstats.triggerRatio,
		HeapMarked: memstats.heapMarked, HeapLive: memstats.heapLive,
		HeapLiveOp: liveBefore}
	runtime.ReadMemStats(&ms)
	if ms.NumGC != r.NumGC || ms.NextGC != r.NextGC {
		fail("runtime.memstats layout does not match go1.13.8's")
	}
	r.NumForcedGC = ms.NumForcedGC
	r.HeapAlloc, r.HeapInuse, r.HeapIdle = ms.HeapAlloc, ms.HeapInuse, ms.HeapIdle
	r.HeapReleased, r.HeapSys, r.HeapObjects = ms.HeapReleased, ms.HeapSys, ms.HeapObjects
	r.StackInuse, r.GCSys = ms.StackInuse, ms.GCSys
	return r
}

func fail(msg string) {
	fmt.Fprintln(os.Stderr, "go113:", msg)
	os.Exit(2)
}

// load reads the script file into BSS: its bytes are script's.
func load(path string) int {
	fd, err := syscall.Open(path, syscall.O_RDONLY, 0)
	if err != nil {
		fail(err.Error())
	}
	buf := (*[maxOps * 4]byte)(unsafe.Pointer(&script[0]))[:]
	n := 0
	for {
		k, err := syscall.Read(fd, buf[n:])
		if err != nil {
			fail(err.Error())
		}
		if k == 0 {
			break
		}
		n += k
		if n == len(buf) {
			fail("script too long")
		}
	}
	syscall.Close(fd)
	if n%4 != 0 {
		fail("script length is not a multiple of 4")
	}
	return n / 4
}

// run performs the script; ncycles records are filled in cycles.
func run(nops int) (ncycles int) {
	next := 0
	seen := memstats.numgc
	for i := 0; i < nops; i++ {
		op := script[i]
		if op&(1<<31) != 0 {
			slots[op&^(1<<31)] = nil
			continue
		}
		size := int(op & (1<<30 - 1))
		before := memstats.heapLive
		if op&(1<<30) != 0 {
			b := make([]byte, size)
			slots[next] = unsafe.Pointer(&b[0])
		} else {
			p := make([]unsafe.Pointer, size/8)
			slots[next] = unsafe.Pointer(&p[0])
		}
		next++
		if memstats.numgc != seen {
			seen = memstats.numgc
			cycles[ncycles] = snap(i, before)
			ncycles++
		}
	}
	return ncycles
}

func main() {
	if len(os.Args) != 2 {
		fail("usage: go113 SCRIPT (env GOMAXPROCS=1 GODEBUG=gcstoptheworld=1 GOGC=n)")
	}
	nops := load(os.Args[1])
	start := snap(-1, memstats.heapLive)
	n := run(nops)
	final := snap(nops-1, memstats.heapLive)
	// The runtime's own live heap: what a forced cycle marks once the
	// script's objects are all dropped.
	for i := range slots[:nops] {
		slots[i] = nil
	}
	runtime.GC()
	runtimeLive := memstats.heapMarked
	out := map[string]interface{}{
		"go":      runtime.Version(),
		"gogc":    os.Getenv("GOGC"),
		"godebug": os.Getenv("GODEBUG"),
		"procs":   runtime.GOMAXPROCS(0),
		"nops":    nops,
		"start":   start,
		"cycles":  cycles[:n],
		"final":   final,
		// the runtime's own live bytes, after the script
		"runtime_live": runtimeLive,
	}
	enc := json.NewEncoder(os.Stdout)
	if err := enc.Encode(out); err != nil {
		fail(err.Error())
	}
}
