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
	"context"
	"fmt"
	"net/http"
	"path/filepath"
	"slices"
	"strconv"
	"time"

	"github.com/mvp-apiserver/kube-apiserver/test/e2e/harness"
	"golang.org/x/sync/errgroup"
)

// The growth curves: each figure measured at several sizes, every size on
// a fresh cluster, ours and then upstream's.
const (
	curveWatches = "growth-watches"
	curveCRDs    = "growth-crds"
	curveServers = "growth-servers"
)

var allCurves = []string{curveWatches, curveCRDs, curveServers}

// growthPlan holds the sizes each curve is measured at.
type growthPlan struct {
	Watches, CRDs, Servers []int
	// ServerIdle is each idle window of the servers curve.
	ServerIdle time.Duration
	// Visible is how many CRDs are created one at a time to time their
	// appearance in every server's merged discovery.
	Visible int
}

// growthPoint is one size of a curve, both implementations' figures.
type growthPoint[T any] struct {
	Size     int `json:"size"`
	Ours     T   `json:"ours"`
	Upstream T   `json:"upstream"`
}

// growthReport is <timestamp>-growth.json.
type growthReport struct {
	Watches []growthPoint[watchPoint]  `json:"watches,omitempty"`
	CRDs    []growthPoint[crdPoint]    `json:"crds,omitempty"`
	Servers []growthPoint[serverPoint] `json:"servers,omitempty"`
}

// watchPoint is the watch curve at one size: n watches through A and n
// directly on B.
type watchPoint struct {
	HeapPerWatchKB                 float64 `json:"proxied_heap_per_watch_kb"`
	StreamGoroutinesPerWatch       float64 `json:"proxied_stream_goroutines_per_watch"`
	ConnGoroutinesPerWatch         float64 `json:"proxied_connection_goroutines_per_watch"`
	DirectHeapPerWatchKB           float64 `json:"direct_heap_per_watch_kb"`
	DirectStreamGoroutinesPerWatch float64 `json:"direct_stream_goroutines_per_watch"`
	OpenProxiedS                   float64 `json:"open_proxied_s"`
	OpenDirectS                    float64 `json:"open_direct_s"`
	LagP50ProxiedMs                float64 `json:"lag_p50_proxied_ms"`
	LagP50DirectMs                 float64 `json:"lag_p50_direct_ms"`
	LagP99ProxiedMs                float64 `json:"lag_p99_proxied_ms"`
	LagP99DirectMs                 float64 `json:"lag_p99_direct_ms"`
	LagP99Ratio                    float64 `json:"lag_p99_ratio"`
	// Watchers (both paths) that received every event exactly once, and
	// how many there were.
	Complete int `json:"watchers_complete"`
	Watchers int `json:"watchers"`
}

// crdPoint is the CRD curve at one size, on three servers.
type crdPoint struct {
	MergedP50Ms    float64 `json:"merged_p50_ms"`
	NoPeerP50Ms    float64 `json:"nopeer_p50_ms"`
	MergedP50Ratio float64 `json:"merged_p50_ratio"`
	MergedKB       float64 `json:"merged_kb"`
	// From a CRD's create request until every server's merged /apis
	// lists it, over plan.Visible CRDs created one at a time; -1 when one
	// was not listed everywhere within 90 s.
	VisibleP50S float64 `json:"visible_p50_s"`
	VisibleP99S float64 `json:"visible_p99_s"`
	RemovalS    float64 `json:"removal_s"`
	// A's live heap restarted with the gate on and with it off, each once
	// it settled (see settledHeap), and the difference: what the MVP
	// holds. HeapSettleS: the longer of the two waits for it to settle.
	HeapOnMB    float64 `json:"heap_gate_on_mb"`
	HeapOffMB   float64 `json:"heap_gate_off_mb"`
	MVPHeapMB   float64 `json:"mvp_heap_mb"`
	HeapSettleS float64 `json:"heap_settle_s"`
}

// serverPoint is the servers curve at one size.
type serverPoint struct {
	// Mean over the servers, percent of one core, each window on
	// servers just restarted.
	IdleCPUOnPct  float64 `json:"idle_cpu_gate_on_pct"`
	IdleCPUOffPct float64 `json:"idle_cpu_gate_off_pct"`
	MVPIdleCPUPct float64 `json:"mvp_idle_cpu_pct"`
	// Bytes a server sent and received on its connections to and from
	// the other servers, per minute, mean over the servers (gate on), and
	// the same per peer.
	PeerBytesPerMin        float64 `json:"peer_bytes_per_min"`
	PeerBytesPerMinPerPeer float64 `json:"peer_bytes_per_min_per_peer"`
	PeerBytesPerMinGateOff float64 `json:"peer_bytes_per_min_gate_off"`
	// From the new server's readiness until every other server proxied
	// a LIST of Jobs to it (the slowest); -1 when one had not in 60 s.
	JoinProxiedS float64 `json:"join_proxied_s"`
}

// runGrowth measures every curve o asks for, at every size; after each
// size, saved is called with what has been measured so far (a long run
// cut short keeps its figures).
func runGrowth(ctx context.Context, o options, binDir, work, prefix string, specs []pairSpec, saved func(growthReport) error) (growthReport, error) {
	var rep growthReport
	for _, curve := range allCurves {
		if !slices.Contains(o.phases, curve) {
			continue
		}
		for _, size := range o.growth.sizes(curve) {
			var pts [2]any
			for i, spec := range specs {
				if !slices.Contains(o.pairs, spec.key) {
					continue
				}
				dir := filepath.Join(work, curve+"-"+strconv.Itoa(size)+"-"+spec.key)
				pt, err := measureCurve(ctx, o, binDir, dir, prefix, curve, size, spec)
				if err != nil {
					return rep, fmt.Errorf("%s at %d, %s: %w (servers' logs under %s)", curve, size, spec.key, err, dir)
				}
				pts[i] = pt
			}
			rep.add(curve, size, pts)
			if err := saved(rep); err != nil {
				return rep, err
			}
		}
	}
	return rep, nil
}

func (g growthPlan) sizes(curve string) []int {
	switch curve {
	case curveWatches:
		return g.Watches
	case curveCRDs:
		return g.CRDs
	default:
		return g.Servers
	}
}

// add appends one size's figures of both implementations (an
// implementation not measured reads zero).
func (r *growthReport) add(curve string, size int, pts [2]any) {
	switch curve {
	case curveWatches:
		r.Watches = append(r.Watches, pointOf[watchPoint](size, pts))
	case curveCRDs:
		r.CRDs = append(r.CRDs, pointOf[crdPoint](size, pts))
	default:
		r.Servers = append(r.Servers, pointOf[serverPoint](size, pts))
	}
}

func pointOf[T any](size int, pts [2]any) growthPoint[T] {
	p := growthPoint[T]{Size: size}
	p.Ours, _ = pts[0].(T)
	p.Upstream, _ = pts[1].(T)
	return p
}

// measureCurve measures one size of one curve for one implementation, on
// a cluster of its own.
func measureCurve(ctx context.Context, o options, binDir, dir, prefix, curve string, size int, spec pairSpec) (any, error) {
	c, err := harness.NewCluster(ctx, binDir, dir)
	if err != nil {
		return nil, err
	}
	defer c.Stop()
	switch curve {
	case curveWatches:
		step("%s: %d watches on Jobs through A and %d directly on B (fresh cluster)", spec.key, size, size)
		plan := watchPlan{Watches: size, Events: o.watch.Events, Rate: o.watch.Rate}
		if o.profile {
			plan.HeapProfile = fmt.Sprintf("%s-%s-watch-%d-heap.pprof", prefix, spec.key, size)
		}
		return watchCurve(ctx, c, spec, plan)
	case curveCRDs:
		step("%s: %d CRDs on three servers (fresh cluster); %d more one at a time; one deleted; A restarted with the gate on, then off", spec.key, size, o.growth.Visible)
		profiles := ""
		if o.profile {
			profiles = fmt.Sprintf("%s-%s-crd-%d", prefix, spec.key, size)
		}
		return crdCurve(ctx, c, spec, size, o.growth.Visible, profiles)
	default:
		step("%s: %d servers (fresh cluster): the last one joins; all idle for %s with the gate on, then off", spec.key, size, o.growth.ServerIdle)
		return serverCurve(ctx, c, spec, size, o.growth.ServerIdle)
	}
}

func watchCurve(ctx context.Context, c *harness.Cluster, spec pairSpec, plan watchPlan) (watchPoint, error) {
	a, b, err := startPair(ctx, c, spec)
	if err != nil {
		return watchPoint{}, err
	}
	f, err := measureWatches(ctx, plan, a, b)
	if err != nil {
		return watchPoint{}, err
	}
	return watchPoint{
		HeapPerWatchKB:                 round(f.ProxyHeapKB, 1),
		StreamGoroutinesPerWatch:       round(f.ProxyGoroutines-f.ProxyConnGoroutines, 3),
		ConnGoroutinesPerWatch:         round(f.ProxyConnGoroutines, 3),
		DirectHeapPerWatchKB:           round(f.DirectHeapKB, 1),
		DirectStreamGoroutinesPerWatch: round(f.DirectGoroutines-f.DirectConnGoroutines, 3),
		OpenProxiedS:                   round(f.ProxiedOpen.Seconds(), 2),
		OpenDirectS:                    round(f.DirectOpen.Seconds(), 2),
		LagP50ProxiedMs:                round(ms(f.ProxiedLag.P50), 1),
		LagP50DirectMs:                 round(ms(f.DirectLag.P50), 1),
		LagP99ProxiedMs:                round(ms(f.ProxiedLag.P99), 1),
		LagP99DirectMs:                 round(ms(f.DirectLag.P99), 1),
		LagP99Ratio:                    round(ratio(f.ProxiedLag.P99, f.DirectLag.P99), 2),
		Complete:                       f.Complete,
		Watchers:                       2 * plan.Watches,
	}, nil
}

// crdCurve creates n CRDs on B with A and C beside it, then measures
// merged discovery against A's own view, the time a new CRD takes to be
// listed everywhere and a deleted one to be gone, and A's heap with the
// gate on and off. With profiles set, A's heap profile with the gate on
// and with it off is saved as <profiles>-gate-{on,off}-heap.pprof.
func crdCurve(ctx context.Context, c *harness.Cluster, spec pairSpec, n, visible int, profiles string) (crdPoint, error) {
	var pt crdPoint
	a, b, err := startPair(ctx, c, spec)
	if err != nil {
		return pt, err
	}
	cs, err := c.StartServer(ctx, harness.ServerOptions{Name: spec.key + "-c", Binary: spec.binary, IP: spec.ipC, Gate: harness.On(true)})
	if err != nil {
		return pt, fmt.Errorf("server C: %w", err)
	}
	servers := []*harness.Server{a, b, cs}
	if err := createCRDs(ctx, b, n); err != nil {
		return pt, err
	}
	for _, s := range servers {
		if err := waitGroups(ctx, s, n); err != nil {
			return pt, err
		}
	}
	merged, nopeer, size, err := discoveryLatency(ctx, a, 200)
	if err != nil {
		return pt, err
	}
	pt.MergedP50Ms, pt.NoPeerP50Ms, pt.MergedKB = round(ms(merged), 3), round(ms(nopeer), 3), round(float64(size)/1e3, 1)
	pt.MergedP50Ratio = round(ratio(merged, nopeer), 3)

	if pt.VisibleP50S, pt.VisibleP99S, err = timeVisible(ctx, b, servers, n, visible); err != nil {
		return pt, err
	}
	removal, timedOut, err := timeRemoval(ctx, b, servers, crdGroup(0))
	if err != nil {
		return pt, err
	}
	pt.RemovalS = removalSeconds(discoveryFigures{RemovalMax: removal, RemovalTimedOut: timedOut})

	on, off, err := gateHeaps(ctx, c, a, profiles)
	if err != nil {
		return pt, err
	}
	pt.HeapOnMB, pt.HeapOffMB, pt.MVPHeapMB = round(on.mb, 1), round(off.mb, 1), round(on.mb-off.mb, 1)
	pt.HeapSettleS = round(max(on.took, off.took).Seconds(), 1)
	return pt, nil
}

// timeVisible creates count CRDs on b one at a time, after the first n,
// and times each from its create request until every server's merged
// /apis lists it: p50 and p99 in seconds, -1 when one timed out.
func timeVisible(ctx context.Context, b *harness.Server, servers []*harness.Server, n, count int) (p50, p99 float64, err error) {
	client, err := crdClient(b)
	if err != nil {
		return 0, 0, err
	}
	var took []time.Duration
	for i := n; i < n+count; i++ {
		start := time.Now()
		if _, err := client.Create(ctx, benchCRD(crdGroup(i)), metaCreate); err != nil {
			return 0, 0, err
		}
		d, timedOut, err := untilListed(ctx, servers, crdGroup(i), true, start)
		if err != nil {
			return 0, 0, err
		}
		if timedOut {
			return -1, -1, nil
		}
		took = append(took, d)
	}
	return round(percentile(took, 50).Seconds(), 3), round(percentile(took, 99).Seconds(), 3), nil
}

// listedDeadline bounds untilListed.
const listedDeadline = 90 * time.Second

// untilListed polls every server's merged /apis (every 10 ms,
// conditionally) until each lists group (listed) or no longer does
// (!listed), and returns how long after start the slowest one took, and
// whether one still had not after listedDeadline.
func untilListed(ctx context.Context, servers []*harness.Server, group string, listed bool, start time.Time) (time.Duration, bool, error) {
	took := make([]time.Duration, len(servers))
	g, gctx := errgroup.WithContext(ctx)
	for i, s := range servers {
		g.Go(func() error {
			hc, etag := s.HTTPClient(), ""
			for time.Since(start) < listedDeadline {
				d, err := getAPIs(gctx, hc, s, acceptAggregated, etag)
				if err != nil {
					return err
				}
				if d.code == http.StatusOK {
					etag = d.etag
					groups, err := benchGroups(d.body)
					if err != nil {
						return err
					}
					if groups[group] == listed {
						took[i] = time.Since(start)
						return nil
					}
				}
				if err := pause(gctx, 10*time.Millisecond); err != nil {
					return err
				}
			}
			took[i] = listedDeadline
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return 0, false, err
	}
	worst := slices.Max(took)
	return worst, worst >= listedDeadline, nil
}
