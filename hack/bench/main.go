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

// Command bench is `make bench`: the Mixed Version Proxy measured side by
// side with upstream's own (docs/performance.md). For our kube-apiserver and then for
// upstream's vanilla one built from the same pinned module, it starts a
// fresh etcd and a pair of servers on loopback: A without batch/v1, B
// full, gate on, same flags. It reads one Job directly from B and through
// A (p50/p99 at concurrency 1, throughput at concurrency 8, the two paths
// alternating in rounds), then a LIST of over 100 MB through A while
// sampling A's live heap. It also runs the filter's Go benchmark on a
// locally served request. It prints a table, writes
// <out>/<timestamp>.json, and exits 3 when a target is missed.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/mvp-apiserver/kube-apiserver/test/e2e/harness"
)

func main() {
	o, err := parseFlags(os.Args[1:])
	if err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(os.Stderr, "bench:", err)
		}
		os.Exit(2)
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	missed, err := run(ctx, o)
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
	if missed > 0 && o.check {
		os.Exit(3)
	}
}

// pairSpec is one implementation under test.
type pairSpec struct {
	key, binary   string
	ipA, ipB, ipC string
	// fleet prefixes the servers curve's addresses: fleet+"1" to "9".
	fleet string
}

// pairResult is what one pair measured.
type pairResult struct {
	direct, proxied pathFigures
	watch           watchFigures
	list            listFigures
	discovery       discoveryFigures
}

func run(ctx context.Context, o options) (int, error) {
	binDir, _ := filepath.Abs(o.binDir)
	out, _ := filepath.Abs(o.out)
	stamp := time.Now().UTC().Format("20060102T150405Z")
	work := filepath.Join(out, "run-"+stamp)
	specs := []pairSpec{
		{key: "ours", binary: filepath.Join(binDir, "kube-apiserver"), ipA: "127.0.0.111", ipB: "127.0.0.112", ipC: "127.0.0.115", fleet: "127.0.0.17"},
		{key: "upstream", binary: filepath.Join(binDir, "kube-apiserver-upstream"), ipA: "127.0.0.113", ipB: "127.0.0.114", ipC: "127.0.0.116", fleet: "127.0.0.18"},
	}

	missed := 0
	if slices.ContainsFunc(o.phases, func(p string) bool { return slices.Contains(allPhases, p) }) {
		m, err := runPhases(ctx, o, binDir, out, work, stamp, specs)
		if err != nil {
			return 0, err
		}
		missed += m
	}
	prefix := filepath.Join(out, stamp+"-growth")
	var files []string
	growth, err := runGrowth(ctx, o, binDir, work, prefix, specs, func(r growthReport) (err error) {
		files, err = writeGrowth(prefix, r)
		return err
	})
	if err != nil {
		return 0, err
	}
	if len(growth.Watches)+len(growth.CRDs)+len(growth.Servers) > 0 {
		printGrowth(os.Stdout, growth)
		missed += printTargets(os.Stdout, "Growth targets", growthTargets(growth))
		fmt.Printf("\nGrowth results: %s.json; plots:\n", prefix)
		for _, f := range files {
			fmt.Printf("  %s\n", filepath.Join(out, f))
		}
	}
	if !o.keep {
		_ = os.RemoveAll(work)
	}
	return missed, nil
}

// runPhases runs the filter's Go benchmark and the default phases, writes
// <out>/<stamp>.json and prints the table; it returns the targets missed.
func runPhases(ctx context.Context, o options, binDir, out, work, stamp string, specs []pairSpec) (int, error) {
	step("Go benchmark of the filter on a locally served request (%d runs)", o.benchCount)
	filt, err := filterBenchmark(ctx, o.goTool, o.moduleDir, o.benchCount)
	if err != nil {
		return 0, err
	}
	results := map[string]pairResult{}
	for _, spec := range specs {
		if !slices.Contains(o.pairs, spec.key) {
			continue
		}
		var profilePath string
		if o.profile {
			profilePath = filepath.Join(out, stamp+"-"+spec.key+"-proxy-cpu.pprof")
		}
		r, err := runPair(ctx, o, binDir, filepath.Join(work, spec.key), spec, profilePath)
		if err != nil {
			return 0, fmt.Errorf("%s: %w (servers' logs under %s)", spec.key, err, filepath.Join(work, spec.key))
		}
		results[spec.key] = r
	}

	rep := newReport(results["ours"], results["upstream"], filt)
	path := filepath.Join(out, stamp+".json")
	if err := writeJSON(path, rep); err != nil {
		return 0, err
	}
	missed := printTable(os.Stdout, results, filt, rep)
	fmt.Printf("\nResults: %s\n", path)
	return missed, nil
}

// writeGrowth writes the growth curves to <prefix>.json and their plots
// beside it, and returns the plots' file names.
func writeGrowth(prefix string, rep growthReport) ([]string, error) {
	if err := writeJSON(prefix+".json", rep); err != nil {
		return nil, err
	}
	return plotGrowth(prefix, rep)
}

func writeJSON(path string, v any) error {
	data, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(data, '\n'), 0o644)
}

// runPair measures one implementation on a fresh etcd and pair of servers.
func runPair(ctx context.Context, o options, binDir, dir string, spec pairSpec, profilePath string) (pairResult, error) {
	var res pairResult
	step("%s: starting etcd, A (%s, --runtime-config=batch/v1=false) and B (%s) from %s", spec.key, spec.ipA, spec.ipB, spec.binary)
	c, err := harness.NewCluster(ctx, binDir, dir)
	if err != nil {
		return res, err
	}
	defer c.Stop()
	a, b, err := startPair(ctx, c, spec)
	if err != nil {
		return res, err
	}

	if slices.Contains(o.phases, "gets") {
		if res.direct, res.proxied, err = measureGets(ctx, o.plan, a, b, profilePath); err != nil {
			return res, err
		}
	}
	if slices.Contains(o.phases, "watch") {
		step("%s: %d watches on Jobs through A and %d directly on B; %d Jobs created on B at %.0f/s", spec.key, o.watch.Watches, o.watch.Watches, o.watch.Events, o.watch.Rate)
		if res.watch, err = measureWatches(ctx, o.watch, a, b); err != nil {
			return res, err
		}
	}
	if slices.Contains(o.phases, "list") {
		if res.list, err = measureList(ctx, o, spec, a, b); err != nil {
			return res, err
		}
	}
	if !slices.Contains(o.phases, "discovery") {
		return res, nil
	}
	step("%s: server C (%s) joins; %d CRDs on B; A's merged /apis against its own view; a CRD deleted; A idle for %s with the gate on, then off",
		spec.key, spec.ipC, o.discovery.CRDs, o.discovery.Idle)
	var idleProfile string
	if profilePath != "" {
		idleProfile = strings.TrimSuffix(profilePath, "-proxy-cpu.pprof") + "-idle-cpu.pprof"
	}
	res.discovery, err = measureDiscovery(ctx, o.discovery, c, spec, a, b, idleProfile)
	return res, err
}

// measureList reads a LIST of over listMB through A while sampling A's heap.
func measureList(ctx context.Context, o options, spec pairSpec, a, b *harness.Server) (listFigures, error) {
	step("%s: LIST of %d MB of Jobs through A, read at %.0f MB/s, A's live heap sampled every %s", spec.key, o.listMB, o.listRate, o.heapInterval)
	objects, err := seedList(ctx, b.Client(), "bench-list", o.listMB)
	if err != nil {
		return listFigures{}, fmt.Errorf("creating the LIST's Jobs: %w", err)
	}
	list := target{name: "LIST through A", client: a.HTTPClient(), url: a.URL + "/apis/batch/v1/namespaces/bench-list/jobs"}
	res, err := listThroughProxy(ctx, list, a.HTTPClient(), a.URL, o.listRate, o.heapInterval)
	res.Objects = objects
	return res, err
}

// measureGets reads one Job directly from B and through A, and checks
// that every request through A was proxied.
func measureGets(ctx context.Context, plan loadPlan, a, b *harness.Server, profilePath string) (direct, proxied pathFigures, err error) {
	const ns, name = "bench", "bench"
	if _, err := b.Client().CoreV1().Namespaces().Create(ctx, namespace(ns), metaCreate); err != nil {
		return direct, proxied, err
	}
	if _, err := b.Client().BatchV1().Jobs(ns).Create(ctx, benchJob(name, ns), metaCreate); err != nil {
		return direct, proxied, err
	}
	aHTTP, bHTTP := a.HTTPClient(), b.HTTPClient()
	path := "/apis/batch/v1/namespaces/" + ns + "/jobs/" + name
	dt := target{name: "direct (B)", client: bHTTP, url: b.URL + path}
	pt := target{name: "proxied (A)", client: aHTTP, url: a.URL + path}
	if err := waitProxying(ctx, pt); err != nil {
		return direct, proxied, err
	}
	before, err := reroutedTotal(ctx, aHTTP, a.URL)
	if err != nil {
		return direct, proxied, err
	}
	step("GET %s: %d requests per path at concurrency 1 after %d to warm up, the paths taking turns; %s per path at concurrency %d in %d alternating rounds",
		path, plan.Requests, plan.Warmup, plan.Duration, plan.Concurrency, plan.Rounds)
	var onLoad func(time.Duration)
	if profilePath != "" {
		// B too: what a proxied request costs the peer that serves it.
		onLoad = func(d time.Duration) {
			go saveCPUProfile(ctx, bHTTP, b.URL, d, strings.Replace(profilePath, "-proxy-cpu", "-peer-cpu", 1))
			saveCPUProfile(ctx, aHTTP, a.URL, d, profilePath)
		}
	}
	if direct, proxied, err = measure(ctx, plan, dt, pt, onLoad); err != nil {
		return direct, proxied, err
	}
	// Every request through A must have been proxied: A does not serve batch/v1.
	after, err := reroutedTotal(ctx, aHTTP, a.URL)
	if err != nil {
		return direct, proxied, err
	}
	if sent := float64(proxied.Total); after-before < sent {
		return direct, proxied, fmt.Errorf("A counted %.0f rerouted requests, but %.0f went through it: they were not proxied", after-before, sent)
	}
	return direct, proxied, nil
}

// startPair starts A and B at once and waits until both are ready.
func startPair(ctx context.Context, c *harness.Cluster, spec pairSpec) (*harness.Server, *harness.Server, error) {
	type started struct {
		s   *harness.Server
		err error
	}
	aCh, bCh := make(chan started, 1), make(chan started, 1)
	go func() {
		s, err := c.StartServer(ctx, harness.ServerOptions{Name: spec.key + "-a", Binary: spec.binary, IP: spec.ipA,
			Gate: harness.On(true), Args: []string{"--runtime-config=batch/v1=false"}})
		aCh <- started{s, err}
	}()
	go func() {
		s, err := c.StartServer(ctx, harness.ServerOptions{Name: spec.key + "-b", Binary: spec.binary, IP: spec.ipB, Gate: harness.On(true)})
		bCh <- started{s, err}
	}()
	a, b := <-aCh, <-bCh
	if a.err != nil {
		return nil, nil, fmt.Errorf("server A: %w", a.err)
	}
	if b.err != nil {
		return nil, nil, fmt.Errorf("server B: %w", b.err)
	}
	return a.s, b.s, nil
}

// waitProxying polls until A answers the Job (it has found B), for up to
// two minutes.
func waitProxying(ctx context.Context, proxied target) error {
	return pollUntil(ctx, 500*time.Millisecond, 2*time.Minute, func() (bool, string, error) {
		err := proxied.get(ctx)
		return err == nil, fmt.Sprintf("A never proxied the Job to B: %v", err), nil
	})
}

// pollUntil calls cond every interval until it reports done, fails, or
// timeout passes (then the last progress note says how far it got).
func pollUntil(ctx context.Context, interval, timeout time.Duration, cond func() (bool, string, error)) error {
	deadline := time.Now().Add(timeout)
	for {
		done, note, err := cond()
		if err != nil || done {
			return err
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("not done within %s: %s", timeout, note)
		}
		if err := pause(ctx, interval); err != nil {
			return err
		}
	}
}

// pause waits d, or fails when ctx ends first.
func pause(ctx context.Context, d time.Duration) error {
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(d):
		return nil
	}
}

// reroutedTotal sums apiserver_rerouted_request_total over all labels;
// upstream's proxy and ours both count under that name.
func reroutedTotal(ctx context.Context, client *http.Client, server string) (float64, error) {
	return metricSum(ctx, client, server, "apiserver_rerouted_request_total")
}

// metricSum sums a metric's samples over all labels in a server's
// /metrics; 0 when it has none yet.
func metricSum(ctx context.Context, client *http.Client, server, name string) (float64, error) {
	body, err := harness.Fetch(ctx, client, server+"/metrics")
	if err != nil {
		return 0, err
	}
	sum, _, err := harness.MetricSum(body, name)
	return sum, err
}

// saveCPUProfile writes a CPU profile of the server taken over d.
func saveCPUProfile(ctx context.Context, client *http.Client, server string, d time.Duration, path string) {
	secs := max(int(d.Seconds()), 1)
	saveProfile(ctx, client, server, "/debug/pprof/profile?seconds="+strconv.Itoa(secs), "CPU", path)
}

// saveHeapProfile writes a profile of the server's live heap (after a
// garbage collection).
func saveHeapProfile(ctx context.Context, client *http.Client, server, path string) {
	saveProfile(ctx, client, server, "/debug/pprof/heap?gc=1", "heap", path)
}

// saveProfile fetches a pprof endpoint of the server into path; a failure
// is reported and costs the run nothing else.
func saveProfile(ctx context.Context, client *http.Client, server, endpoint, what, path string) {
	data, err := harness.Fetch(ctx, client, server+endpoint)
	if err == nil {
		err = os.WriteFile(path, data, 0o644)
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "bench: %s profile of %s: %v\n", what, server, err)
		return
	}
	fmt.Printf("  %s profile of %s saved: %s\n", what, server, path)
}

func step(format string, args ...any) {
	fmt.Printf("\n==> "+format+"\n", args...)
}
