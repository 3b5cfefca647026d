// Command spangc-bench-go runs one workload of the spangc comparison
// harness (benches/ in the spangc repository) on Go's collector, with the
// default GOGC and GOMAXPROCS.
//
// Usage: spangc-bench-go <workload> <size>
//
// The workloads repeat benches/src/workloads/*.rs: same trees, same
// constants, same checksum arithmetic (uint64, wrapping). The harness
// compares the checksums and flags any disagreement. Output follows
// benches/src/report.rs:
//
//	rss t_ms=<ms> rss_bytes=<bytes>        (grow-shrink only)
//	result checksum=<n> gc_count=<n> max_pause_ns=<n>
//
// gc_count is MemStats.NumGC; max_pause_ns is the longest of the pauses
// MemStats.PauseNs still holds, which are the last 256 cycles' (a run with
// more cycles reports the longest of its last 256).
package main

import (
	"fmt"
	"os"
	"runtime"
	"strconv"
)

func main() {
	if len(os.Args) != 3 {
		fmt.Fprintln(os.Stderr, "usage: spangc-bench-go <workload> <size>")
		os.Exit(2)
	}
	size, err := strconv.ParseUint(os.Args[2], 10, 64)
	if err != nil {
		fmt.Fprintf(os.Stderr, "size %q: %v\n", os.Args[2], err)
		os.Exit(2)
	}
	var checksum uint64
	var rss []rssSample
	switch os.Args[1] {
	case "binary-trees":
		checksum = binaryTrees(size)
	case "gcbench":
		checksum = gcBench(size)
	case "churn":
		checksum = churn(size)
	case "threads":
		checksum = threads(size)
	case "grow-shrink":
		checksum, rss = growShrink(size)
	default:
		fmt.Fprintf(os.Stderr, "unknown workload %q\n", os.Args[1])
		os.Exit(2)
	}

	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	held := int(ms.NumGC)
	if held > len(ms.PauseNs) {
		held = len(ms.PauseNs)
	}
	var maxPause uint64
	for _, p := range ms.PauseNs[:held] {
		if p > maxPause {
			maxPause = p
		}
	}
	for _, s := range rss {
		fmt.Printf("rss t_ms=%d rss_bytes=%d\n", s.tMs, s.rssBytes)
	}
	fmt.Printf("result checksum=%d gc_count=%d max_pause_ns=%d\n", checksum, ms.NumGC, maxPause)
}
