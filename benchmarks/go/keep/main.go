// Command keep is Go's side of benchmarks/bench_keep.py: N allocations of
// one type, every object kept live, with the garbage collector off, timed
// as ns per allocation, and the process's RSS growth per object once every
// object's first byte was written.  It prints the same line as
// `bench_fastpath --keep SIZE NOSCAN N`: "keep NS_PER_ALLOC RSS_PER_OBJECT
// CPU_NS_PER_ALLOC", the last from the process's CPU time (getrusage).
//
// Each case is a fixed type allocated with new, so every allocation is one
// runtime.newobject -> mallocgc call of that size, with or without pointers
// (noscan): 8 B noscan goes to the tiny allocator, 16 B noscan to span class
// 5, the pointerful sizes to the scan classes, 100 KB to a large span.
// Standard library only; it builds with Go 1.13 and later
// (GO111MODULE=off go build main.go).
package main

import (
	"bufio"
	"fmt"
	"os"
	"runtime/debug"
	"strconv"
	"strings"
	"syscall"
	"time"
	"unsafe"
)

type (
	noscan8   uint64
	noscan16  [2]uint64
	ptr16     [2]*byte
	ptr128    [16]*byte
	ptr1024   [128]*byte
	ptr32768  [4096]*byte
	ptr100000 [12500]*byte
)

// loop allocates len(keep) objects with alloc and keeps them.
func loop(keep []unsafe.Pointer, alloc func() unsafe.Pointer) {
	for i := range keep {
		keep[i] = alloc()
	}
}

// allocator returns the function allocating one object of the case, and
// false for a case this program does not know.  The allocation inside
// each closure is a plain new(T): the closure's call is the loop's only
// extra cost, the same for every case.
func allocator(size int, noscan bool) (func() unsafe.Pointer, bool) {
	switch {
	case size == 8 && noscan:
		return func() unsafe.Pointer { return unsafe.Pointer(new(noscan8)) }, true
	case size == 16 && noscan:
		return func() unsafe.Pointer { return unsafe.Pointer(new(noscan16)) }, true
	case size == 16:
		return func() unsafe.Pointer { return unsafe.Pointer(new(ptr16)) }, true
	case size == 128 && !noscan:
		return func() unsafe.Pointer { return unsafe.Pointer(new(ptr128)) }, true
	case size == 1024 && !noscan:
		return func() unsafe.Pointer { return unsafe.Pointer(new(ptr1024)) }, true
	case size == 32768 && !noscan:
		return func() unsafe.Pointer { return unsafe.Pointer(new(ptr32768)) }, true
	case size == 100000 && !noscan:
		return func() unsafe.Pointer { return unsafe.Pointer(new(ptr100000)) }, true
	}
	return nil, false
}

func rssBytes() int64 {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return -1
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "VmRSS:") {
			kib, _ := strconv.ParseInt(strings.Fields(line[6:])[0], 10, 64)
			return kib * 1024
		}
	}
	return -1
}

// cpuNs is the CPU time the process has used (user + system).
func cpuNs() float64 {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return float64(ru.Utime.Nano() + ru.Stime.Nano())
}

func main() {
	if len(os.Args) != 4 {
		fmt.Fprintln(os.Stderr, "usage: keep SIZE NOSCAN N")
		os.Exit(2)
	}
	size, _ := strconv.Atoi(os.Args[1])
	noscan := os.Args[2] != "0"
	n, _ := strconv.Atoi(os.Args[3])
	alloc, ok := allocator(size, noscan)
	if !ok || n <= 0 {
		fmt.Fprintln(os.Stderr, "keep: unknown case")
		os.Exit(2)
	}
	debug.SetGCPercent(-1)
	keep := make([]unsafe.Pointer, n)
	for i := range keep { // resident before timing, as the C driver's
		keep[i] = unsafe.Pointer(&keep)
	}
	rss0 := rssBytes()
	c0 := cpuNs()
	t0 := time.Now()
	loop(keep, alloc)
	t := float64(time.Since(t0).Nanoseconds()) / float64(n)
	cpu := (cpuNs() - c0) / float64(n)
	for _, p := range keep {
		*(*byte)(p) = 1
	}
	grown := rssBytes() - rss0
	fmt.Printf("keep %.3f %.3f %.3f\n", t, float64(grown)/float64(n), cpu)
}
