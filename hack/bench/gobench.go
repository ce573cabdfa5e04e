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
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
)

// filterFigures are BenchmarkFilterLocal's results: the median ns/op of
// the runs, and the most allocations any run saw.
type filterFigures struct {
	NsOp     float64
	AllocsOp float64
	Runs     int
}

// filterBenchmark runs the filter's Go benchmark in the module at dir,
// echoing go test's own output. -trimpath as make build and make test
// use it: other flags would compile all of Kubernetes again.
func filterBenchmark(ctx context.Context, goTool, dir string, count int) (filterFigures, error) {
	cmd := exec.CommandContext(ctx, goTool, "test", "-trimpath", "-run", "^$", "-bench", "^BenchmarkFilterLocal$",
		"-benchmem", "-count", strconv.Itoa(count), "./pkg/controlplane/peerproxy")
	cmd.Dir = dir
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		return filterFigures{}, err
	}
	if err := cmd.Start(); err != nil {
		return filterFigures{}, err
	}
	fig, perr := parseBenchmark(io.TeeReader(out, os.Stdout), "BenchmarkFilterLocal")
	if err := cmd.Wait(); err != nil {
		return filterFigures{}, fmt.Errorf("go test -bench: %w", err)
	}
	return fig, perr
}

// parseBenchmark reads go test -bench -benchmem output for one benchmark:
// "BenchmarkX-2   17467059   58.43 ns/op   0 B/op   0 allocs/op".
func parseBenchmark(r io.Reader, name string) (filterFigures, error) {
	var ns []float64
	var allocs float64
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 4 || (f[0] != name && !strings.HasPrefix(f[0], name+"-")) {
			continue
		}
		var haveNs, haveAllocs bool
		for i := 2; i+1 < len(f); i++ {
			v, err := strconv.ParseFloat(f[i], 64)
			if err != nil {
				continue
			}
			switch f[i+1] {
			case "ns/op":
				ns, haveNs = append(ns, v), true
			case "allocs/op":
				allocs, haveAllocs = max(allocs, v), true
			}
		}
		if !haveNs || !haveAllocs {
			return filterFigures{}, fmt.Errorf("%s: no ns/op or allocs/op in %q (run with -benchmem)", name, sc.Text())
		}
	}
	if err := sc.Err(); err != nil {
		return filterFigures{}, err
	}
	if len(ns) == 0 {
		return filterFigures{}, fmt.Errorf("no result line for %s", name)
	}
	slices.Sort(ns)
	return filterFigures{NsOp: ns[len(ns)/2], AllocsOp: allocs, Runs: len(ns)}, nil
}
