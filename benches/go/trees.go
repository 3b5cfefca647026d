package main

import (
	"os"
	"strconv"
	"strings"
	"time"
)

// Node is the two-pointer tree node every workload uses.
type Node struct {
	left, right *Node
}

func bottomUp(depth uint32) *Node {
	if depth == 0 {
		return &Node{}
	}
	return &Node{bottomUp(depth - 1), bottomUp(depth - 1)}
}

// populate is GCBench's Populate: both children are allocated and stored
// into the existing parent before either is populated.
func populate(node *Node, depth uint32) {
	if depth == 0 {
		return
	}
	node.left = &Node{}
	node.right = &Node{}
	populate(node.left, depth-1)
	populate(node.right, depth-1)
}

func build(topDown bool, depth uint32) *Node {
	if !topDown {
		return bottomUp(depth)
	}
	root := &Node{}
	populate(root, depth)
	return root
}

// check counts the nodes of a tree; nil counts 0.
func (n *Node) check() uint64 {
	if n == nil {
		return 0
	}
	return 1 + n.left.check() + n.right.check()
}

func treeSize(depth uint32) uint64 {
	return (uint64(1) << (depth + 1)) - 1
}

type rssSample struct {
	tMs, rssBytes uint64
}

func currentRSS() (uint64, bool) {
	statm, err := os.ReadFile("/proc/self/statm")
	if err != nil {
		return 0, false
	}
	fields := strings.Fields(string(statm))
	if len(fields) < 2 {
		return 0, false
	}
	pages, err := strconv.ParseUint(fields[1], 10, 64)
	if err != nil {
		return 0, false
	}
	return pages * uint64(os.Getpagesize()), true
}

// startSampler samples the RSS now and every interval until stop is
// called, which samples once more and returns the samples (so even a run
// shorter than one interval has its start and end; benches/src/rss.rs).
func startSampler(interval time.Duration) (stop func() []rssSample) {
	start := time.Now()
	var samples []rssSample
	sample := func() {
		if rss, ok := currentRSS(); ok {
			samples = append(samples, rssSample{uint64(time.Since(start).Milliseconds()), rss})
		}
	}
	sample()
	done := make(chan struct{})
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		ticker := time.NewTicker(interval)
		defer ticker.Stop()
		for {
			select {
			case <-done:
				return
			case <-ticker.C:
				sample()
			}
		}
	}()
	return func() []rssSample {
		close(done)
		<-finished
		sample()
		return samples
	}
}
