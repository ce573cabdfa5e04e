/*
Copyright 2026 The Mixed Version Proxy Authors.

Licensed under the Apache License, Version 2.0 (the "License");
you may not use this file except in compliance with the License.
You may obtain a copy of the License at

    http://www.apache.org/licenses/LICENSE-2.0

Unless required by applicable law or agreed to in writing, software
distributed under the License is distributed on an "AS IS" BASIS,
WITHOUT WARRANTIES OR CONDITIONS OF ANY KIND, either express or implied.
See the License for the specific language governing permissions and
limitations under the License.
*/

package main

import (
	"errors"
	"flag"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
)

// options are the command line.
type options struct {
	binDir, out, goTool, moduleDir string
	plan                           loadPlan
	watch                          watchPlan
	discovery                      discoveryPlan
	growth                         growthPlan
	listMB                         int
	listRate                       float64
	heapInterval                   time.Duration
	benchCount                     int
	profile, check, keep           bool
	// phases are the measurements to run (all but the growth curves by
	// default); a figure of a phase left out reads 0 and its target is
	// missed.
	phases []string
	// pairs are the implementations measured (both by default).
	pairs []string
}

// allPhases are make bench's measurements by default, in the order they
// run (the growth curves, allCurves, run after them when asked for);
// allPairs the implementations it measures.
var (
	allPhases = []string{"gets", "watch", "list", "discovery"}
	allPairs  = []string{"ours", "upstream"}
)

// parseFlags reads make bench's command line and checks every value.
func parseFlags(args []string) (options, error) {
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	var o options
	fs.StringVar(&o.binDir, "bin-dir", "_output/bin", "folder with kube-apiserver, kube-apiserver-upstream and etcd")
	fs.StringVar(&o.out, "out", "_output/bench", "folder for the JSON results, and the servers' files while they run")
	fs.StringVar(&o.goTool, "go", "go", "go command that runs the filter's Go benchmark")
	fs.StringVar(&o.moduleDir, "module-dir", ".", "root of this module (for the Go benchmark)")
	fs.IntVar(&o.plan.Warmup, "warmup", 1000, "requests per path before measuring")
	fs.IntVar(&o.plan.Requests, "requests", 3000, "requests per path at concurrency 1")
	fs.IntVar(&o.plan.Concurrency, "concurrency", 8, "requests in flight for the throughput figure")
	fs.DurationVar(&o.plan.Duration, "duration", 20*time.Second, "time per path under concurrent load")
	fs.IntVar(&o.plan.Rounds, "rounds", 20, "how many times the direct and proxied paths alternate under concurrent load")
	fs.IntVar(&o.listMB, "list-mb", 105, "size of the LIST read through the proxying server, in MB (10^6 bytes)")
	fs.Float64Var(&o.listRate, "list-rate", 25, "the LIST's client reads at most this many MB a second")
	fs.DurationVar(&o.heapInterval, "heap-interval", 250*time.Millisecond, "how often the proxying server's heap is sampled during the LIST")
	fs.IntVar(&o.watch.Watches, "watches", 1000, "watches on Jobs held through A (proxied), and as many directly on B")
	fs.IntVar(&o.watch.Events, "watch-events", 50, "Jobs created on B while the watches are open; every watch must receive each")
	fs.Float64Var(&o.watch.Rate, "watch-rate", 5, "Jobs created per second during the watch phase")
	fs.IntVar(&o.discovery.CRDs, "crds", 200, "CRDs created on B for the discovery phase, each in a group of its own")
	fs.IntVar(&o.discovery.Requests, "discovery-requests", 200, "reads of A's merged /apis and of its own view, in turns")
	fs.DurationVar(&o.discovery.Idle, "idle", 60*time.Second, "how long A's idle CPU is measured, with the gate on and with it off")
	growth := growthFlags(fs, &o.growth)
	fs.IntVar(&o.benchCount, "bench-count", 5, "runs of the filter's Go benchmark (the median is reported)")
	fs.BoolVar(&o.profile, "profile", false, "save CPU profiles of each proxying server and its peer under concurrent load (<out>/<timestamp>-<pair>-proxy-cpu.pprof, -peer-cpu.pprof) and of the proxying server idle with the gate on (-idle-cpu.pprof); with -growth, a live heap profile of the proxying server at each size of the watch curve once its watches are open (<timestamp>-growth-<pair>-watch-<n>-heap.pprof)")
	fs.BoolVar(&o.check, "check", true, "exit 3 when a target is missed")
	fs.BoolVar(&o.keep, "keep", false, "keep the servers' files (logs, etcd data) after a successful run")
	pairs := fs.String("pairs", strings.Join(allPairs, ","), "the implementations to measure, comma-separated (figures of one left out read 0)")
	phases := fs.String("phases", strings.Join(allPhases, ","), "the measurements to run, comma-separated, of "+strings.Join(append(slices.Clone(allPhases), allCurves...), ", ")+" (a shorter run while working on one of them)")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	var err error
	if o.phases, err = knownNames("-phases", *phases, append(slices.Clone(allPhases), allCurves...)); err == nil {
		o.pairs, err = knownNames("-pairs", *pairs, allPairs)
	}
	if err != nil {
		return o, err
	}
	if err := growth(&o); err != nil {
		return o, err
	}
	return o, nil
}

// growthFlags declares the growth curves' flags into fs; the function it
// returns checks them once fs is parsed and fills g and o's phases.
func growthFlags(fs *flag.FlagSet, g *growthPlan) func(*options) error {
	all := fs.Bool("growth", false, "also measure the growth curves ("+strings.Join(allCurves, ", ")+"), each size on a fresh cluster: far longer than the default phases")
	watchSizes := fs.String("growth-watches", "1000,5000,10000", "sizes of the watch curve: watches through A (and as many on B)")
	crdSizes := fs.String("growth-crds", "200,1000,2000", "sizes of the CRD curve: CRDs on three servers")
	serverSizes := fs.String("growth-servers", "3,5,7", fmt.Sprintf("sizes of the servers curve: servers (2 to %d)", maxFleet))
	fs.DurationVar(&g.ServerIdle, "growth-idle", 45*time.Second, "each idle window of the servers curve (gate on, then off)")
	fs.IntVar(&g.Visible, "growth-visible", 20, "CRDs created one at a time to time their appearance everywhere")
	return func(o *options) error {
		if *all {
			for _, c := range allCurves {
				if !slices.Contains(o.phases, c) {
					o.phases = append(o.phases, c)
				}
			}
		}
		var err error
		if g.Watches, err = sizeList("-growth-watches", *watchSizes, 1, 100000); err != nil {
			return err
		}
		if g.CRDs, err = sizeList("-growth-crds", *crdSizes, 1, 10000); err != nil {
			return err
		}
		if g.Servers, err = sizeList("-growth-servers", *serverSizes, 2, maxFleet); err != nil {
			return err
		}
		if g.ServerIdle <= 0 || g.Visible < 1 {
			return errors.New("-growth-idle and -growth-visible must be positive")
		}
		return nil
	}
}

// sizeList reads a comma-separated list of sizes, each within [lo, hi],
// in increasing order.
func sizeList(flagName, value string, lo, hi int) ([]int, error) {
	var sizes []int
	for _, f := range strings.Split(value, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < lo || n > hi {
			return nil, fmt.Errorf("%s: %q is not a size from %d to %d", flagName, f, lo, hi)
		}
		if len(sizes) > 0 && n <= sizes[len(sizes)-1] {
			return nil, fmt.Errorf("%s: sizes must increase (%d after %d)", flagName, n, sizes[len(sizes)-1])
		}
		sizes = append(sizes, n)
	}
	return sizes, nil
}

// knownNames splits a comma-separated flag value and checks each name is
// one of known.
func knownNames(flagName, value string, known []string) ([]string, error) {
	names := strings.Split(value, ",")
	for _, n := range names {
		if !slices.Contains(known, n) {
			return nil, fmt.Errorf("%s: unknown name %q (known: %s)", flagName, n, strings.Join(known, ", "))
		}
	}
	return names, nil
}
