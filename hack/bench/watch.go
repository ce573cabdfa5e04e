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
	"bytes"
	"context"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sync/errgroup"
	"golang.org/x/time/rate"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/mvp-apiserver/kube-apiserver/test/e2e/harness"
)

// watchPlan says how many watches each path holds and how many Jobs are
// created on the serving server while they do.
type watchPlan struct {
	Watches int
	Events  int
	Rate    float64 // Jobs created per second
	// HeapProfile, when set, is where A's live heap profile is saved once
	// the proxied watches are open (-profile).
	HeapProfile string
}

// watchFigures are the watch phase's measurements.
type watchFigures struct {
	Watches, Events int
	// Per proxied watch, on the proxying server A; per direct watch, on
	// the serving server B (for reference).
	ProxyHeapKB, ProxyGoroutines   float64
	DirectHeapKB, DirectGoroutines float64
	// Of the goroutines per watch, those of HTTP/2 connections.
	ProxyConnGoroutines, DirectConnGoroutines float64
	// Creation (just before the create request) to receipt by a watcher,
	// over every event every watcher received.
	ProxiedLag, DirectLag lagFigures
	// From the first watch request to the last watch's response headers.
	ProxiedOpen, DirectOpen time.Duration
	// Watchers that received every event exactly once, of 2 × Watches.
	Complete int
}

type lagFigures struct{ P50, P99 time.Duration }

// serverLoad is a server's live heap after a forced collection (median of
// three) and its goroutines at rest: of three goroutine profiles, the one
// with the fewest goroutines outside HTTP/2 connections (the goroutines
// that serve the samples themselves, and any other passing request's,
// come and go).
type serverLoad struct {
	heap       uint64
	goroutines float64
	// connGoroutines are those HTTP/2 connections hold, not their streams
	// (countGoroutines), in the same profile as goroutines.
	connGoroutines int
}

func sampleLoad(ctx context.Context, admin *http.Client, server string) (serverLoad, error) {
	heap, err := medianHeap(ctx, admin, server, 3)
	if err != nil {
		return serverLoad{}, err
	}
	load := serverLoad{heap: heap}
	for i := range 3 {
		body, err := harness.Fetch(ctx, admin, server+"/debug/pprof/goroutine?debug=1")
		if err != nil {
			return serverLoad{}, err
		}
		total, conn, err := countGoroutines(string(body))
		if err != nil {
			return serverLoad{}, err
		}
		if i == 0 || total-conn < int(load.goroutines)-load.connGoroutines {
			load.goroutines, load.connGoroutines = float64(total), conn
		}
	}
	return load, nil
}

// perWatch is the growth from before to after, per watch.
func perWatch(before, after serverLoad, n int) (heapKB, goroutines, connGoroutines float64) {
	return (float64(after.heap) - float64(before.heap)) / 1024 / float64(n), (after.goroutines - before.goroutines) / float64(n),
		float64(after.connGoroutines-before.connGoroutines) / float64(n)
}

// Functions that only an HTTP/2 connection's own goroutines run, not a
// stream's: a served connection's loop, frame reader and frame writer, and
// a client connection's reader and its health check (the ping after
// PingAfter of silence). A server advertises at most 100 streams a
// connection by default, so many streams need several connections.
var connectionFrames = []string{
	"http2.(*serverConn).serve+", "http2.(*serverConn).readFrames+", "http2.(*serverConn).writeFrameAsync+",
	"http2.(*ClientConn).readLoop+", "http2.(*ClientConn).healthCheck+",
	"http.(*http2serverConn).serve+", "http.(*http2serverConn).readFrames+", "http.(*http2serverConn).writeFrameAsync+",
	"http.(*http2ClientConn).readLoop+", "http.(*http2ClientConn).healthCheck+",
}

// countGoroutines reads a debug=1 goroutine profile: a "goroutine profile:
// total <n>" line, then stacks separated by blank lines, each headed
// "<count> @ <pcs>". It returns the total and those of HTTP/2 connections.
func countGoroutines(profile string) (total, conn int, err error) {
	first, stacks, _ := strings.Cut(profile, "\n")
	if total, err = strconv.Atoi(strings.TrimPrefix(first, "goroutine profile: total ")); err != nil {
		return 0, 0, fmt.Errorf("goroutine profile: first line %q: %w", first, err)
	}
	for _, stack := range strings.Split(stacks, "\n\n") {
		head, rest, _ := strings.Cut(stack, "\n")
		count, _, ok := strings.Cut(head, " @ ")
		if !ok || !slices.ContainsFunc(connectionFrames, func(f string) bool { return strings.Contains(rest, f) }) {
			continue
		}
		n, err := strconv.Atoi(count)
		if err != nil {
			return 0, 0, fmt.Errorf("goroutine profile: %q: %w", head, err)
		}
		conn += n
	}
	return total, conn, nil
}

// measureWatches holds plan.Watches watches on Jobs through A (proxied)
// and as many directly on B, creates plan.Events Jobs on B at plan.Rate,
// and checks that every watch received every one.
func measureWatches(ctx context.Context, plan watchPlan, a, b *harness.Server) (watchFigures, error) {
	fig := watchFigures{Watches: plan.Watches, Events: plan.Events}
	const ns = "bench-watch"
	bc := b.Client()
	if _, err := bc.CoreV1().Namespaces().Create(ctx, namespace(ns), metaCreate); err != nil {
		return fig, err
	}
	list, err := bc.BatchV1().Jobs(ns).List(ctx, metav1.ListOptions{})
	if err != nil {
		return fig, err
	}
	// A proxies Jobs once it has found B (the GET phase waits for that too).
	if err := waitProxying(ctx, target{name: "LIST through A", client: a.HTTPClient(), url: a.URL + "/apis/batch/v1/namespaces/" + ns + "/jobs"}); err != nil {
		return fig, err
	}
	path := "/apis/batch/v1/namespaces/" + ns + "/jobs?watch=1&timeoutSeconds=1800&resourceVersion=" + list.ResourceVersion
	wctx, closeWatches := context.WithCancel(ctx)
	defer closeWatches()
	sent := newSendTimes(plan.Events)

	proxied, err := openMeasured(ctx, wctx, a, path, plan.Watches, sent, &fig.ProxyHeapKB, &fig.ProxyGoroutines, &fig.ProxyConnGoroutines, &fig.ProxiedOpen)
	if err != nil {
		return fig, err
	}
	if plan.HeapProfile != "" {
		saveHeapProfile(ctx, a.HTTPClient(), a.URL, plan.HeapProfile)
	}
	direct, err := openMeasured(ctx, wctx, b, path, plan.Watches, sent, &fig.DirectHeapKB, &fig.DirectGoroutines, &fig.DirectConnGoroutines, &fig.DirectOpen)
	if err != nil {
		return fig, err
	}

	if err := createPaced(ctx, bc, ns, plan, sent); err != nil {
		return fig, err
	}
	if err := waitAllReceived(ctx, append(slices.Clone(proxied), direct...), plan.Events); err != nil {
		return fig, err
	}
	fig.ProxiedLag, fig.DirectLag = lags(proxied), lags(direct)
	for _, w := range append(proxied, direct...) {
		if w.received.Load() == int64(plan.Events) {
			fig.Complete++
		}
	}
	return fig, nil
}

// openMeasured opens n watches on the server's path under wctx and writes
// what each one costs the server (heap, goroutines, and of those the
// HTTP/2 connections') into heapKB, gorout and conn, and how long opening
// them all took into took.
func openMeasured(ctx, wctx context.Context, s *harness.Server, path string, n int, sent *sendTimes, heapKB, gorout, conn *float64, took *time.Duration) ([]*watcher, error) {
	admin := s.HTTPClient()
	before, err := sampleLoad(ctx, admin, s.URL)
	if err != nil {
		return nil, err
	}
	start := time.Now()
	ws, err := openWatches(wctx, watchClient(s), s.URL+path, n, sent)
	*took = time.Since(start)
	if err != nil {
		return nil, fmt.Errorf("watches on %s: %w", s.Name, err)
	}
	after, err := sampleLoad(ctx, admin, s.URL)
	if err != nil {
		return nil, err
	}
	*heapKB, *gorout, *conn = perWatch(before, after, n)
	return ws, nil
}

// watchClient is the server's admin client without a timeout, for what
// lasts as long as a phase (watches, a profile of an idle window).
func watchClient(s *harness.Server) *http.Client {
	c := s.HTTPClient()
	c.Timeout = 0
	return c
}

// sendTimes records when each Job of the phase was created, by index.
type sendTimes struct{ at []atomic.Int64 }

func newSendTimes(n int) *sendTimes { return &sendTimes{at: make([]atomic.Int64, n)} }

func jobName(i int) string { return fmt.Sprintf("w-%05d", i) }

// watcher is one open watch: it counts the Jobs it was told of and the
// lag of each.
type watcher struct {
	received atomic.Int64
	mu       sync.Mutex
	lag      []time.Duration
	err      atomic.Pointer[error]
}

// openWatches opens n watches on url and returns once every one has its
// response headers. The first opens alone, so that the rest share its
// HTTP/2 connection as a client's watches do; opened together from
// nothing, each would dial a connection of its own, and the servers'
// per-connection goroutines would count as the watches'. The rest open
// 50 at a time.
func openWatches(ctx context.Context, client *http.Client, url string, n int, sent *sendTimes) ([]*watcher, error) {
	ws := make([]*watcher, n)
	for i := range ws {
		ws[i] = &watcher{}
	}
	if err := ws[0].open(ctx, ctx, client, url, sent); err != nil {
		return ws, err
	}
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(50)
	for i := 1; i < n; i++ {
		g.Go(func() error { return ws[i].open(ctx, gctx, client, url, sent) })
	}
	return ws, g.Wait()
}

// open starts the watch; its stream is read under ctx, until the phase
// ends.
func (w *watcher) open(ctx, openCtx context.Context, client *http.Client, url string, sent *sendTimes) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	req.Header.Set("Accept", "application/json")
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		resp.Body.Close()
		return fmt.Errorf("watch %s answered %d", url, resp.StatusCode)
	}
	if openCtx.Err() != nil {
		resp.Body.Close()
		return openCtx.Err()
	}
	go w.read(ctx, resp, sent)
	return nil
}

// read scans the stream's events (one JSON object a line) and takes the
// Job's name from each ADDED one without decoding the rest.
func (w *watcher) read(ctx context.Context, resp *http.Response, sent *sendTimes) {
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	// A Job's event is about 2 kB; the buffer grows for a larger one. Ten
	// thousand watchers a path keep their buffers for the whole phase.
	sc.Buffer(make([]byte, 0, 8<<10), 4<<20)
	marker := []byte(`"metadata":{"name":"` + "w-")
	for sc.Scan() {
		now := time.Now()
		line := sc.Bytes()
		if !bytes.HasPrefix(line, []byte(`{"type":"ADDED"`)) {
			continue
		}
		i := bytes.Index(line, marker)
		if i < 0 {
			continue
		}
		rest := line[i+len(marker):]
		end := bytes.IndexByte(rest, '"')
		idx, err := strconv.Atoi(string(rest[:max(end, 0)]))
		if end < 0 || err != nil || idx >= len(sent.at) {
			continue
		}
		w.mu.Lock()
		w.lag = append(w.lag, now.Sub(time.Unix(0, sent.at[idx].Load())))
		w.mu.Unlock()
		w.received.Add(1)
	}
	if err := sc.Err(); err != nil && ctx.Err() == nil {
		w.err.Store(&err)
	}
}

// createPaced creates plan.Events Jobs in ns at plan.Rate, recording when
// each create was sent.
func createPaced(ctx context.Context, c kubernetes.Interface, ns string, plan watchPlan, sent *sendTimes) error {
	lim := rate.NewLimiter(rate.Limit(plan.Rate), 1)
	for i := range plan.Events {
		if err := lim.Wait(ctx); err != nil {
			return err
		}
		sent.at[i].Store(time.Now().UnixNano())
		if _, err := c.BatchV1().Jobs(ns).Create(ctx, benchJob(jobName(i), ns), metaCreate); err != nil {
			return fmt.Errorf("creating Job %s: %w", jobName(i), err)
		}
	}
	return nil
}

// waitAllReceived polls until every watcher received events Jobs, for up
// to two minutes; a watcher whose stream failed or fell short is named.
func waitAllReceived(ctx context.Context, ws []*watcher, events int) error {
	return pollUntil(ctx, 100*time.Millisecond, 2*time.Minute, func() (bool, string, error) {
		short := 0
		for i, w := range ws {
			if errp := w.err.Load(); errp != nil {
				return false, "", fmt.Errorf("watch %d of %d failed after %d events: %w", i, len(ws), w.received.Load(), *errp)
			}
			if w.received.Load() < int64(events) {
				short++
			}
		}
		return short == 0, fmt.Sprintf("%d of %d watches did not receive all %d events", short, len(ws), events), nil
	})
}

// lags is the p50 and p99 over every event the watchers received.
func lags(ws []*watcher) lagFigures {
	var all []time.Duration
	for _, w := range ws {
		w.mu.Lock()
		all = append(all, w.lag...)
		w.mu.Unlock()
	}
	return lagFigures{P50: percentile(all, 50), P99: percentile(all, 99)}
}
