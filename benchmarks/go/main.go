// Command gobench runs allocbench's workloads 1-4 (pair16, batch, live,
// livelog) and mt-pair16 against the Go runtime's own allocator, with the
// garbage collector off (debug.SetGCPercent(-1), the default) or at
// -gogc=N, and prints the same one line of JSON as benchmarks/allocbench.c.
// Standard library only, and only what Go 1.13 already has (run.py builds
// it with the installed toolchain and with a Go 1.13 one when there is
// one), with `go build` into a temporary directory.
//
// Go cannot free explicitly: every "free" is dropping a reference.  With
// -gogc=N the collector frees what was dropped, as goalloc's GC mode does.
// With GOGC=off memory only grows:
//   - objects are []byte (noscan, like goalloc's figures, which write no
//     heap bitmap); sizes below 16 B therefore use Go's tiny allocator;
//   - the live-set workloads would allocate ~160 GB at full size, so they
//     stop after `budget` bytes (default 2 GiB) and report the ops run;
//   - peak RSS is everything ever allocated, not the live set: it is not
//     comparable with the other columns.
//
// Sizes, slots and orders come from the same splitmix64 sequence and seed
// as the C driver, so every column sees the same requests.
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"io/ioutil"
	"math"
	"os"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

const osPage = 4096

type rng struct{ s uint64 }

func (r *rng) next() uint64 {
	r.s += 0x9E3779B97F4A7C15
	z := r.s
	z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9
	z = (z ^ (z >> 27)) * 0x94D049BB133111EB
	return z ^ (z >> 31)
}

func (r *rng) uniform(lo, hi uint32) uint32 {
	return lo + uint32(r.next()%(uint64(hi)-uint64(lo)+1))
}

func (r *rng) loguniform(lo, hi uint32) uint32 {
	u := float64(r.next()>>11) * (1.0 / (1 << 53))
	x := math.Exp(math.Log(float64(lo)) + u*(math.Log(float64(hi)+1)-math.Log(float64(lo))))
	v := uint32(x)
	if v < lo {
		return lo
	}
	if v > hi {
		return hi
	}
	return v
}

func maxrssKiB() int64 {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return int64(ru.Maxrss)
}

// hwmKiB is VmHWM from /proc/self/status: ru_maxrss without the parent's
// high-water mark that ru_maxrss keeps across execve (see allocbench.c).
func hwmKiB() int64 {
	b, err := ioutil.ReadFile("/proc/self/status")
	if err != nil {
		return maxrssKiB()
	}
	for _, ln := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(ln, "VmHWM:") {
			f := strings.Fields(ln[6:])
			if len(f) > 0 {
				if v, err := strconv.ParseInt(f[0], 10, 64); err == nil {
					return v
				}
			}
		}
	}
	return maxrssKiB()
}

var sink []byte

type result struct {
	Alloc     string  `json:"alloc"`
	Version   string  `json:"version"`
	Workload  string  `json:"workload"`
	Threads   int     `json:"threads"`
	Procs     int     `json:"procs"`
	Ops       int64   `json:"ops"`
	Live      int64   `json:"live"`
	Seconds   float64 `json:"seconds"`
	NsPerOp   float64 `json:"ns_per_op"`
	Mops      float64 `json:"mops"`
	AllocNs   float64 `json:"alloc_ns"`
	FreeNs    float64 `json:"free_ns"`
	MaxrssKiB int64   `json:"maxrss_kib"`
	HwmKiB    int64   `json:"hwm_kib"`
	BaseKiB   int64   `json:"base_kib"`
	PeakKiB   int64   `json:"peak_kib"`
	Check     uint64  `json:"check"`
	Truncated bool    `json:"truncated,omitempty"`
	Note      string  `json:"note,omitempty"`
}

func pair16(n int64, res *result) {
	var check uint64
	sink = make([]byte, 16)
	res.BaseKiB = hwmKiB()
	t0 := time.Now()
	for i := int64(0); i < n; i++ {
		p := make([]byte, 16)
		p[0] = byte(i)
		check += uint64(p[0])
		sink = p
	}
	t := time.Since(t0)
	res.Seconds = t.Seconds()
	res.NsPerOp = float64(t.Nanoseconds()) / float64(n)
	res.Ops = n
	res.Check = check
}

func batch(n int64, seed uint64, res *result) {
	r := rng{seed}
	size := make([]uint16, n)
	order := make([]uint32, n)
	objs := make([][]byte, n)
	for i := range size {
		size[i] = uint16(r.uniform(8, 1024))
		order[i] = uint32(i)
	}
	for i := n - 1; i > 0; i-- {
		j := int64(r.next() % uint64(i+1))
		order[i], order[j] = order[j], order[i]
	}
	var check uint64
	res.BaseKiB = hwmKiB()
	t0 := time.Now()
	for i := range objs {
		p := make([]byte, size[i])
		p[0] = byte(i)
		objs[i] = p
	}
	t1 := time.Now()
	for _, k := range order {
		check += uint64(objs[k][0])
		objs[k] = nil // Go's "free": the memory waits for a GC
	}
	t2 := time.Now()
	res.Seconds = t2.Sub(t0).Seconds()
	res.NsPerOp = float64(t2.Sub(t0).Nanoseconds()) / float64(n)
	res.AllocNs = float64(t1.Sub(t0).Nanoseconds()) / float64(n)
	res.FreeNs = float64(t2.Sub(t1).Nanoseconds()) / float64(n)
	res.Ops = n
	res.Check = check
}

func newObj(sz uint32, i int64) []byte {
	p := make([]byte, sz)
	p[0] = byte(i)
	for off := uint32(osPage); off < sz; off += osPage {
		p[off] = byte(i) // roughly every page, as allocbench.c does
	}
	return p
}

func live(n, nlive int64, logDist bool, seed uint64, budget int64, res *result) {
	r := rng{seed}
	draw := func() uint32 {
		if logDist {
			return r.loguniform(8, 32768)
		}
		return r.uniform(8, 32768)
	}
	initSize := make([]uint32, nlive)
	for i := range initSize {
		initSize[i] = draw()
	}
	slot := make([]uint32, n)
	size := make([]uint32, n)
	var total int64
	ops := n
	for i := int64(0); i < n; i++ {
		slot[i] = uint32(r.next() % uint64(nlive))
		size[i] = draw()
		total += int64(size[i])
		if total > budget && ops == n {
			ops = i + 1
		}
	}
	objs := make([][]byte, nlive)
	res.BaseKiB = hwmKiB()
	for i := range objs {
		objs[i] = newObj(initSize[i], int64(i))
	}
	var check uint64
	t0 := time.Now()
	for i := int64(0); i < ops; i++ {
		k := slot[i]
		check += uint64(objs[k][0])
		objs[k] = newObj(size[i], i)
	}
	t := time.Since(t0)
	res.Seconds = t.Seconds()
	res.NsPerOp = float64(t.Nanoseconds()) / float64(ops)
	res.Ops = ops
	res.Check = check
	if ops < n {
		res.Truncated = true
		res.Note = fmt.Sprintf("GOGC=off cannot free: stopped after %d of %d replacements (%d MiB budget)", ops, n, budget>>20)
	}
}

func mtPair16(n int64, threads int, res *result) {
	var ready, done sync.WaitGroup
	start := make(chan struct{})
	starts := make([]time.Time, threads)
	ends := make([]time.Time, threads)
	checks := make([]uint64, threads)
	sinks := make([][]byte, threads*8) // padded: one cache line each
	ready.Add(threads)
	done.Add(threads)
	for t := 0; t < threads; t++ {
		go func(t int) {
			runtime.LockOSThread()
			defer done.Done()
			sinks[t*8] = make([]byte, 16)
			ready.Done()
			<-start
			starts[t] = time.Now()
			var check uint64
			for i := int64(0); i < n; i++ {
				p := make([]byte, 16)
				p[0] = byte(i)
				check += uint64(p[0])
				sinks[t*8] = p
			}
			ends[t] = time.Now()
			checks[t] = check
		}(t)
	}
	ready.Wait()
	res.BaseKiB = hwmKiB()
	close(start)
	done.Wait()
	t0, t1 := starts[0], ends[0]
	for t := 0; t < threads; t++ {
		if starts[t].Before(t0) {
			t0 = starts[t]
		}
		if ends[t].After(t1) {
			t1 = ends[t]
		}
		res.Check += checks[t]
	}
	d := t1.Sub(t0)
	res.Seconds = d.Seconds()
	res.NsPerOp = float64(d.Nanoseconds()) / float64(n)
	res.Ops = n
}

func main() {
	info := flag.Bool("info", false, "print the version and exit")
	n := flag.Int64("n", -1, "ops (per thread)")
	nlive := flag.Int64("live", 10000, "live-set size")
	threads := flag.Int("threads", 1, "mt-pair16: goroutines, each locked to a thread")
	procs := flag.Int("procs", 0, "GOMAXPROCS (default: threads)")
	seed := flag.Uint64("seed", 0x5EED5EED12345678, "PRNG seed")
	budget := flag.Int64("budget", 2<<30, "live/livelog with GOGC=off: bytes to allocate before stopping")
	gogc := flag.Int("gogc", -1, "GOGC (debug.SetGCPercent); < 0 is off")
	flag.Parse()
	debug.SetGCPercent(*gogc)
	setting := "GOGC=off"
	if *gogc >= 0 {
		setting = fmt.Sprintf("GOGC=%d", *gogc)
		*budget = math.MaxInt64 // the collector frees: no budget needed
	}
	res := result{Alloc: "go", Version: runtime.Version() + " " + setting, Threads: 1, Live: *nlive}
	if *info {
		out, _ := json.Marshal(map[string]string{"alloc": "go", "version": res.Version})
		fmt.Println(string(out))
		return
	}
	if flag.NArg() != 1 {
		fmt.Fprintln(os.Stderr, "usage: gobench [flags] pair16|batch|live|livelog|mt-pair16")
		os.Exit(1)
	}
	w := flag.Arg(0)
	res.Workload = w
	p := *procs
	if p <= 0 {
		p = *threads
	}
	if w != "mt-pair16" {
		p = 1
	}
	runtime.GOMAXPROCS(p)
	res.Procs = p
	def := map[string]int64{"pair16": 20000000, "batch": 1000000, "live": 10000000,
		"livelog": 10000000, "mt-pair16": 10000000}
	ops, ok := def[w]
	if !ok {
		fmt.Fprintf(os.Stderr, "gobench: unknown workload %q\n", w)
		os.Exit(1)
	}
	if *n > 0 {
		ops = *n
	}
	switch w {
	case "pair16":
		pair16(ops, &res)
	case "batch":
		batch(ops, *seed, &res)
	case "live":
		live(ops, *nlive, false, *seed, *budget, &res)
	case "livelog":
		live(ops, *nlive, true, *seed, *budget, &res)
	case "mt-pair16":
		res.Threads = *threads
		mtPair16(ops, *threads, &res)
	}
	res.Mops = float64(res.Ops) * float64(res.Threads) / res.Seconds / 1e6
	res.MaxrssKiB = maxrssKiB()
	res.HwmKiB = hwmKiB()
	res.PeakKiB = res.HwmKiB - res.BaseKiB
	out, err := json.Marshal(res)
	if err != nil {
		panic(err)
	}
	fmt.Println(string(out))
}
