// Command bench is `make bench`: the Mixed Version Proxy measured side by
// side with upstream's own (SPEC §10). For our kube-apiserver and then for
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
	"flag"
	"fmt"
	"io"
	"math"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/mvp-apiserver/kube-apiserver/test/e2e/harness"
)

// options are the command line.
type options struct {
	binDir, out, goTool, moduleDir string
	plan                           loadPlan
	listMB                         int
	listRate                       float64
	heapInterval                   time.Duration
	benchCount                     int
	profile, check, keep           bool
}

func main() {
	var o options
	flag.StringVar(&o.binDir, "bin-dir", "_output/bin", "folder with kube-apiserver, kube-apiserver-upstream and etcd")
	flag.StringVar(&o.out, "out", "_output/bench", "folder for the JSON results, and the servers' files while they run")
	flag.StringVar(&o.goTool, "go", "go", "go command that runs the filter's Go benchmark")
	flag.StringVar(&o.moduleDir, "module-dir", ".", "root of this module (for the Go benchmark)")
	flag.IntVar(&o.plan.Warmup, "warmup", 1000, "requests per path before measuring")
	flag.IntVar(&o.plan.Requests, "requests", 3000, "requests per path at concurrency 1")
	flag.IntVar(&o.plan.Concurrency, "concurrency", 8, "requests in flight for the throughput figure")
	flag.DurationVar(&o.plan.Duration, "duration", 20*time.Second, "time per path under concurrent load")
	flag.IntVar(&o.plan.Rounds, "rounds", 20, "how many times the direct and proxied paths alternate under concurrent load")
	flag.IntVar(&o.listMB, "list-mb", 105, "size of the LIST read through the proxying server, in MB (10^6 bytes)")
	flag.Float64Var(&o.listRate, "list-rate", 25, "the LIST's client reads at most this many MB a second")
	flag.DurationVar(&o.heapInterval, "heap-interval", 250*time.Millisecond, "how often the proxying server's heap is sampled during the LIST")
	flag.IntVar(&o.benchCount, "bench-count", 5, "runs of the filter's Go benchmark (the median is reported)")
	flag.BoolVar(&o.profile, "profile", false, "save a CPU profile of each proxying server under concurrent load (<out>/<timestamp>-<pair>-proxy-cpu.pprof)")
	flag.BoolVar(&o.check, "check", true, "exit 3 when a target is missed")
	flag.BoolVar(&o.keep, "keep", false, "keep the servers' files (logs, etcd data) after a successful run")
	flag.Parse()
	if o.plan.Rounds < 1 || o.plan.Requests < 1 || o.plan.Warmup < 0 || o.plan.Concurrency < 1 || o.listMB < 1 || o.listRate <= 0 {
		fmt.Fprintln(os.Stderr, "bench: -rounds, -requests, -concurrency, -list-mb and -list-rate must be positive")
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
	key, binary string
	ipA, ipB    string
}

// pairResult is what one pair measured.
type pairResult struct {
	direct, proxied pathFigures
	list            listFigures
}

func run(ctx context.Context, o options) (int, error) {
	binDir, _ := filepath.Abs(o.binDir)
	out, _ := filepath.Abs(o.out)
	stamp := time.Now().UTC().Format("20060102T150405Z")
	work := filepath.Join(out, "run-"+stamp)

	step("Go benchmark of the filter on a locally served request (%d runs)", o.benchCount)
	filt, err := filterBenchmark(ctx, o.goTool, o.moduleDir, o.benchCount)
	if err != nil {
		return 0, err
	}

	specs := []pairSpec{
		{key: "ours", binary: filepath.Join(binDir, "kube-apiserver"), ipA: "127.0.0.111", ipB: "127.0.0.112"},
		{key: "upstream", binary: filepath.Join(binDir, "kube-apiserver-upstream"), ipA: "127.0.0.113", ipB: "127.0.0.114"},
	}
	results := map[string]pairResult{}
	for _, spec := range specs {
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
	data, err := json.MarshalIndent(rep, "", "  ")
	if err != nil {
		return 0, err
	}
	if err := os.WriteFile(path, append(data, '\n'), 0o644); err != nil {
		return 0, err
	}
	missed := printTable(os.Stdout, results, filt, rep)
	fmt.Printf("\nResults: %s\n", path)
	if !o.keep {
		_ = os.RemoveAll(work)
	}
	return missed, nil
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

	const ns, name = "bench", "bench"
	if _, err := b.Client().CoreV1().Namespaces().Create(ctx, namespace(ns), metaCreate); err != nil {
		return res, err
	}
	if _, err := b.Client().BatchV1().Jobs(ns).Create(ctx, benchJob(name, ns), metaCreate); err != nil {
		return res, err
	}
	aHTTP, bHTTP := a.HTTPClient(), b.HTTPClient()
	path := "/apis/batch/v1/namespaces/" + ns + "/jobs/" + name
	direct := target{name: "direct (B)", client: bHTTP, url: b.URL + path}
	proxied := target{name: "proxied (A)", client: aHTTP, url: a.URL + path}
	if err := waitProxying(ctx, proxied); err != nil {
		return res, err
	}
	before, err := reroutedTotal(ctx, aHTTP, a.URL)
	if err != nil {
		return res, err
	}

	step("%s: GET %s: %d requests per path at concurrency 1 after %d to warm up, the paths taking turns; %s per path at concurrency %d in %d alternating rounds",
		spec.key, path, o.plan.Requests, o.plan.Warmup, o.plan.Duration, o.plan.Concurrency, o.plan.Rounds)
	var onLoad func(time.Duration)
	if profilePath != "" {
		onLoad = func(d time.Duration) { saveCPUProfile(ctx, aHTTP, a.URL, d, profilePath) }
	}
	res.direct, res.proxied, err = measure(ctx, o.plan, direct, proxied, onLoad)
	if err != nil {
		return res, err
	}
	// Every request through A must have been proxied: A does not serve batch/v1.
	after, err := reroutedTotal(ctx, aHTTP, a.URL)
	if err != nil {
		return res, err
	}
	if sent := float64(res.proxied.Total); after-before < sent {
		return res, fmt.Errorf("A counted %.0f rerouted requests, but %.0f went through it: they were not proxied", after-before, sent)
	}

	step("%s: LIST of %d MB of Jobs through A, read at %.0f MB/s, A's live heap sampled every %s", spec.key, o.listMB, o.listRate, o.heapInterval)
	if res.list.Objects, err = seedList(ctx, b.Client(), "bench-list", o.listMB); err != nil {
		return res, fmt.Errorf("creating the LIST's Jobs: %w", err)
	}
	list := target{name: "LIST through A", client: aHTTP, url: a.URL + "/apis/batch/v1/namespaces/bench-list/jobs"}
	objects := res.list.Objects
	if res.list, err = listThroughProxy(ctx, list, aHTTP, a.URL, o.listRate, o.heapInterval); err != nil {
		return res, err
	}
	res.list.Objects = objects
	return res, nil
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
	deadline := time.Now().Add(2 * time.Minute)
	tick := time.NewTicker(500 * time.Millisecond)
	defer tick.Stop()
	for {
		err := proxied.get(ctx)
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("A never proxied the Job to B within 2m: %w", err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-tick.C:
		}
	}
}

// fetch GETs url and returns the body of a 200 answer; any other answer
// is an error naming the URL.
func fetch(ctx context.Context, client *http.Client, url string) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	resp, err := client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s answered %d: %.200s", url, resp.StatusCode, body)
	}
	return body, nil
}

// reroutedTotal sums apiserver_rerouted_request_total over all labels;
// upstream's proxy and ours both count under that name.
func reroutedTotal(ctx context.Context, client *http.Client, server string) (float64, error) {
	body, err := fetch(ctx, client, server+"/metrics")
	if err != nil {
		return 0, err
	}
	var sum float64
	for _, line := range strings.Split(string(body), "\n") {
		if !strings.HasPrefix(line, "apiserver_rerouted_request_total{") {
			continue
		}
		v, err := strconv.ParseFloat(line[strings.LastIndexByte(line, ' ')+1:], 64)
		if err != nil {
			return 0, fmt.Errorf("metric line %q: %w", line, err)
		}
		sum += v
	}
	return sum, nil
}

// saveCPUProfile writes a CPU profile of the server taken over d.
func saveCPUProfile(ctx context.Context, client *http.Client, server string, d time.Duration, path string) {
	secs := max(int(d.Seconds()), 1)
	data, err := fetch(ctx, client, server+"/debug/pprof/profile?seconds="+strconv.Itoa(secs))
	if err == nil {
		err = os.WriteFile(path, data, 0o644)
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "bench: CPU profile of %s: %v\n", server, err)
		return
	}
	fmt.Printf("  CPU profile of the proxying server under load: %s\n", path)
}

// pairReport is one implementation's part of the JSON results.
type pairReport struct {
	P50RatioC1   float64 `json:"p50_ratio_c1"`
	P99RatioC1   float64 `json:"p99_ratio_c1"`
	RPSRatioC8   float64 `json:"rps_ratio_c8"`
	DirectP50ms  float64 `json:"direct_p50_ms"`
	ProxiedP50ms float64 `json:"proxied_p50_ms"`
}

// report is the JSON results file; its fields are fixed (issue 6).
type report struct {
	Ours                  pairReport `json:"ours"`
	Upstream              pairReport `json:"upstream"`
	FilterLocalNsOp       float64    `json:"filter_local_ns_op"`
	FilterLocalAllocsOp   float64    `json:"filter_local_allocs_op"`
	ListSizeMB            float64    `json:"list_size_mb"`
	ListProxyHeapGrowthMB float64    `json:"list_proxy_heap_growth_mb"`
}

func newReport(ours, upstream pairResult, filt filterFigures) report {
	return report{
		Ours:                  newPairReport(ours),
		Upstream:              newPairReport(upstream),
		FilterLocalNsOp:       round(filt.NsOp, 2),
		FilterLocalAllocsOp:   filt.AllocsOp,
		ListSizeMB:            round(float64(ours.list.Bytes)/1e6, 2),
		ListProxyHeapGrowthMB: round(ours.list.GrowthMB, 2),
	}
}

func newPairReport(r pairResult) pairReport {
	return pairReport{
		P50RatioC1:   round(ratio(r.proxied.P50, r.direct.P50), 3),
		P99RatioC1:   round(ratio(r.proxied.P99, r.direct.P99), 3),
		RPSRatioC8:   round(r.proxied.RPS/r.direct.RPS, 3),
		DirectP50ms:  round(ms(r.direct.P50), 3),
		ProxiedP50ms: round(ms(r.proxied.P50), 3),
	}
}

func ratio(a, b time.Duration) float64 { return float64(a) / float64(b) }
func ms(d time.Duration) float64       { return float64(d) / float64(time.Millisecond) }
func round(v float64, places int) float64 {
	p := math.Pow(10, float64(places))
	return math.Round(v*p) / p
}

func step(format string, args ...any) {
	fmt.Printf("\n==> "+format+"\n", args...)
}
