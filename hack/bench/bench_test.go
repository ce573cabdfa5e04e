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
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/mvp-apiserver/kube-apiserver/test/e2e/harness"
)

func TestPercentileNearestRank(t *testing.T) {
	ms := func(v ...int) []time.Duration {
		var d []time.Duration
		for _, x := range v {
			d = append(d, time.Duration(x)*time.Millisecond)
		}
		return d
	}
	for _, tc := range []struct {
		lat  []time.Duration
		p    float64
		want time.Duration
	}{
		{ms(5, 1, 4, 2, 3), 50, 3 * time.Millisecond},
		{ms(5, 1, 4, 2, 3), 99, 5 * time.Millisecond},
		{ms(4, 1, 3, 2), 50, 2 * time.Millisecond},
		{ms(7), 99, 7 * time.Millisecond},
		{nil, 50, 0},
	} {
		if got := percentile(tc.lat, tc.p); got != tc.want {
			t.Errorf("percentile(%v, %v) = %v, want %v", tc.lat, tc.p, got, tc.want)
		}
	}
}

func TestParseBenchmark(t *testing.T) {
	out := `goos: linux
BenchmarkFilterLocal-2   	17467059	        58.43 ns/op	       0 B/op	       0 allocs/op
BenchmarkFilterLocalX-2   	1	        9999 ns/op	       0 B/op	       7 allocs/op
BenchmarkFilterLocal-2   	17467059	        61.00 ns/op	       0 B/op	       0 allocs/op
BenchmarkFilterLocal-2   	17467059	        57.10 ns/op	      32 B/op	       1 allocs/op
PASS
`
	got, err := parseBenchmark(strings.NewReader(out), "BenchmarkFilterLocal")
	if err != nil {
		t.Fatal(err)
	}
	if got.NsOp != 58.43 || got.AllocsOp != 1 || got.Runs != 3 {
		t.Errorf("got %+v, want the median 58.43 ns/op, the worst 1 allocs/op, 3 runs", got)
	}
	if _, err := parseBenchmark(strings.NewReader("PASS\n"), "BenchmarkFilterLocal"); err == nil {
		t.Error("no result line: want an error")
	}
	if _, err := parseBenchmark(strings.NewReader("BenchmarkFilterLocal-2 10 5.0 ns/op\n"), "BenchmarkFilterLocal"); err == nil {
		t.Error("no allocs/op (no -benchmem): want an error")
	}
}

func TestParseHeapAlloc(t *testing.T) {
	got, err := harness.ParseHeapAlloc(strings.NewReader("heap profile: 1: 2 [3: 4] @ heap/1048576\n\n# runtime.MemStats\n# Alloc = 1\n# HeapAlloc = 73400320\n# HeapSys = 9\n"))
	if err != nil || got != 73400320 {
		t.Errorf("got %d, %v; want 73400320", got, err)
	}
	if _, err := harness.ParseHeapAlloc(strings.NewReader("# Alloc = 1\n")); err == nil {
		t.Error("no HeapAlloc line: want an error")
	}
}

func TestParseStatCPU(t *testing.T) {
	// A command name with spaces and a parenthesis, as the kernel writes it.
	stat := "4242 (kube (api) srv) S 1 4242 4242 0 -1 4194560 9000 0 12 0 1234 566 0 0 20 0 41 0 100 2000000 3000 18446744073709551615\n"
	got, err := parseStatCPU(stat)
	if err != nil || got != 18*time.Second {
		t.Fatalf("parseStatCPU = %v, %v; want 18s (1234+566 ticks)", got, err)
	}
	if _, err := parseStatCPU("4242 (short) S 1 2"); err == nil {
		t.Errorf("a truncated line was accepted")
	}
}

// The watch reader counts ADDED events of the phase's Jobs by name and
// ignores everything else.
func TestWatcherCountsAddedJobs(t *testing.T) {
	sent := newSendTimes(3)
	for i := range 3 {
		sent.at[i].Store(time.Now().Add(-time.Second).UnixNano())
	}
	stream := strings.Join([]string{
		`{"type":"ADDED","object":{"kind":"Job","apiVersion":"batch/v1","metadata":{"name":"w-00000","namespace":"bench-watch"}}}`,
		`{"type":"MODIFIED","object":{"kind":"Job","apiVersion":"batch/v1","metadata":{"name":"w-00000","namespace":"bench-watch"}}}`,
		`{"type":"ADDED","object":{"kind":"Job","apiVersion":"batch/v1","metadata":{"name":"other","namespace":"bench-watch"}}}`,
		`{"type":"ADDED","object":{"kind":"Job","apiVersion":"batch/v1","metadata":{"name":"w-00002","namespace":"bench-watch"}}}`,
		`{"type":"ADDED","object":{"kind":"Job","apiVersion":"batch/v1","metadata":{"name":"w-00009","namespace":"bench-watch"}}}`,
	}, "\n") + "\n"
	w := &watcher{}
	w.read(t.Context(), &http.Response{Body: io.NopCloser(strings.NewReader(stream))}, sent)
	if n := w.received.Load(); n != 2 {
		t.Errorf("received %d events, want 2 (w-00000 and w-00002)", n)
	}
	for _, l := range w.lag {
		if l < time.Second || l > time.Minute {
			t.Errorf("lag %v, want about 1s", l)
		}
	}
	if w.err.Load() != nil {
		t.Errorf("a clean end of stream recorded an error: %v", *w.err.Load())
	}
}

// Only the goroutines of HTTP/2 connections count, by their stacks'
// counts, for x/net/http2 and net/http's bundled copy alike; the total is
// the profile's own.
func TestCountGoroutines(t *testing.T) {
	profile := strings.Join([]string{
		"goroutine profile: total 1216\n1000 @ 0x1 0x2\n#\t0x1\tgolang.org/x/net/http2.(*serverConn).runHandler+0x5a\t/x/server.go:2400",
		"10 @ 0x3 0x4\n#\t0x3\tgolang.org/x/net/http2.(*serverConn).serve+0x8f5\t/x/server.go:940\n#\t0x4\tnet/http.(*conn).serve+0x1\t/y/server.go:2100",
		"10 @ 0x5\n#\t0x5\tgolang.org/x/net/http2.(*serverConn).readFrames+0x9\t/x/server.go:812",
		"7 @ 0x6\n#\t0x6\tgolang.org/x/net/http2.(*ClientConn).readLoop+0x3\t/x/transport.go:2200",
		"2 @ 0x7\n#\t0x7\tnet/http.(*http2ClientConn).readLoop+0x3\t/z/h2_bundle.go:9000",
		"3 @ 0x9\n#\t0x9\tgolang.org/x/net/http2.(*ClientConn).healthCheck+0x3\t/x/transport.go:900",
		"1 @ 0xa\n#\t0xa\tgolang.org/x/net/http2.(*serverConn).writeFrameAsync+0x3\t/x/server.go:850",
		"183 @ 0x8\n#\t0x8\tk8s.io/apimachinery/pkg/util/wait.BackoffUntil+0x1\t/w/backoff.go:200",
	}, "\n\n")
	total, conn, err := countGoroutines(profile)
	if err != nil {
		t.Fatal(err)
	}
	if total != 1216 || conn != 33 {
		t.Errorf("counted %d goroutines, %d of connections; want 1216 and 33 (10 serve, 10 readFrames, 7+2 readLoop, 3 healthCheck, 1 writeFrameAsync)", total, conn)
	}
	for _, bad := range []string{
		"goroutine profile: total 2\nx @ 0x1\n#\t0x1\tgolang.org/x/net/http2.(*ClientConn).readLoop+0x3\n",
		"1 @ 0x1\n#\t0x1\tgolang.org/x/net/http2.(*ClientConn).readLoop+0x3\n",
	} {
		if _, _, err := countGoroutines(bad); err == nil {
			t.Errorf("profile accepted: %q", bad)
		}
	}
}

// -phases and -pairs take known names only, and keep them in order.
func TestKnownNames(t *testing.T) {
	for _, tc := range []struct {
		value   string
		want    []string
		wantErr bool
	}{
		{"gets", []string{"gets"}, false},
		{"watch,discovery", []string{"watch", "discovery"}, false},
		{"gets,lists", nil, true},
		{"", nil, true},
	} {
		got, err := knownNames("-phases", tc.value, allPhases)
		if (err != nil) != tc.wantErr || !slices.Equal(got, tc.want) {
			t.Errorf("knownNames(%q) = %v, %v; want %v (error: %t)", tc.value, got, err, tc.want, tc.wantErr)
		}
	}
}

func TestMetricSum(t *testing.T) {
	text := []byte(`# HELP apiserver_rerouted_request_total x
# TYPE apiserver_rerouted_request_total counter
apiserver_rerouted_request_total{code="200",group="batch",resource="jobs"} 20
apiserver_rerouted_request_total{code="503",group="batch",resource="jobs"} 2
apiserver_rerouted_request_total_other{code="200"} 1000
go_goroutines 312
`)
	for _, tc := range []struct {
		name    string
		labels  []string
		sum     float64
		samples int
	}{
		{"apiserver_rerouted_request_total", nil, 22, 2},
		{"apiserver_rerouted_request_total", []string{`code="503"`}, 2, 1},
		{"apiserver_rerouted_request_total", []string{`code="503"`, `resource="pods"`}, 0, 0},
		{"go_goroutines", nil, 312, 1},
	} {
		sum, samples, err := harness.MetricSum(text, tc.name, tc.labels...)
		if err != nil || sum != tc.sum || samples != tc.samples {
			t.Errorf("%s %v: %v over %d samples (%v), want %v over %d", tc.name, tc.labels, sum, samples, err, tc.sum, tc.samples)
		}
	}
	if _, err := harness.ParseMetric(text, "process_open_fds"); err == nil {
		t.Error("a metric with no sample parsed")
	}
	if _, _, err := harness.MetricSum([]byte("go_goroutines many\n"), "go_goroutines"); err == nil {
		t.Error("a sample that is not a number was added")
	}
}
