package main

import (
	"sync"
	"time"
)

// binaryTrees: benches/src/workloads/binary_trees.rs.
func binaryTrees(size uint64) uint64 {
	const minDepth = 4
	maxDepth := uint32(size)
	if size > 40 {
		maxDepth = 40
	}
	if maxDepth < minDepth+2 {
		maxDepth = minDepth + 2
	}
	checksum := bottomUp(maxDepth + 1).check()
	longLived := bottomUp(maxDepth)
	for depth := uint32(minDepth); depth <= maxDepth; depth += 2 {
		iterations := uint64(1) << (maxDepth - depth + minDepth)
		for i := uint64(0); i < iterations; i++ {
			checksum += bottomUp(depth).check()
		}
	}
	return checksum + longLived.check()
}

// gcBench: benches/src/workloads/gcbench.rs.
func gcBench(size uint64) uint64 {
	const minDepth = 4
	const arrayLen = 500000
	const probe = 1000
	maxDepth := uint32(size)
	if size > 30 {
		maxDepth = 30
	}
	if maxDepth < minDepth {
		maxDepth = minDepth
	}
	stretch := maxDepth + 2
	checksum := bottomUp(stretch).check()
	longLived := build(true, maxDepth)
	array := make([]float64, arrayLen)
	for i := 0; i < arrayLen/2; i++ {
		array[i] = 1.0 / float64(i)
	}
	for depth := uint32(minDepth); depth <= maxDepth; depth += 2 {
		iters := 2 * treeSize(stretch) / treeSize(depth)
		for _, topDown := range []bool{true, false} {
			for i := uint64(0); i < iters; i++ {
				checksum += build(topDown, depth).check()
			}
		}
	}
	checksum += longLived.check()
	if array[probe] == 1.0/float64(probe) {
		checksum++
	}
	return checksum
}

type record [4]uint64

// churn: benches/src/workloads/churn.rs.
func churn(size uint64) uint64 {
	const window = 100000
	ring := make([]*record, window)
	var checksum uint64
	slot := 0
	for i := uint64(0); i < size; i++ {
		if old := ring[slot]; old != nil {
			checksum += old[0] + old[1] + old[2] + old[3]
		}
		ring[slot] = &record{i, i * 3, i * 5, i * 7}
		slot++
		if slot == window {
			slot = 0
		}
	}
	return checksum
}

// threads: benches/src/workloads/threads.rs, with one shared ring; each
// goroutine owns its part.
func threads(size uint64) uint64 {
	const nThreads = 2
	const ringLen = 4096
	const depth = 6
	ring := make([]*Node, nThreads*ringLen)
	sums := make([]uint64, nThreads)
	var wg sync.WaitGroup
	for t := 0; t < nThreads; t++ {
		wg.Add(1)
		go func(t int) {
			defer wg.Done()
			part := ring[t*ringLen : (t+1)*ringLen]
			var sum uint64
			slot := 0
			for i := uint64(0); i < size; i++ {
				part[slot] = bottomUp(depth)
				sum += part[slot].check()
				slot++
				if slot == ringLen {
					slot = 0
				}
			}
			for _, tree := range part {
				sum += tree.check()
			}
			sums[t] = sum
		}(t)
	}
	wg.Wait()
	var checksum uint64
	for _, s := range sums {
		checksum += s
	}
	return checksum
}

// growShrink: benches/src/workloads/grow_shrink.rs.
func growShrink(size uint64) (uint64, []rssSample) {
	const chunkDepth = 14
	const garbagePerStep = 4
	const idleTicks = 20
	const idleDepth = 10
	const tick = 100 * time.Millisecond
	stop := startSampler(tick)
	chunks := make([]*Node, size)
	var checksum uint64
	garbage := func() {
		for g := 0; g < garbagePerStep; g++ {
			checksum += bottomUp(chunkDepth).check()
		}
	}
	for i := range chunks {
		chunks[i] = bottomUp(chunkDepth)
		checksum += chunks[i].check()
		garbage()
	}
	for i := range chunks {
		chunks[i] = nil
		garbage()
	}
	for i := 0; i < idleTicks; i++ {
		time.Sleep(tick)
		checksum += bottomUp(idleDepth).check()
	}
	return checksum, stop()
}
