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
	"math"
	"time"
)

// pairReport is one implementation's part of the JSON results.
type pairReport struct {
	P50RatioC1   float64 `json:"p50_ratio_c1"`
	P99RatioC1   float64 `json:"p99_ratio_c1"`
	RPSRatioC8   float64 `json:"rps_ratio_c8"`
	DirectP50ms  float64 `json:"direct_p50_ms"`
	ProxiedP50ms float64 `json:"proxied_p50_ms"`
	// Per proxied watch on A; lag is p99 proxied / p99 direct.
	WatchHeapPerWatchKB     float64 `json:"watch_heap_per_watch_kb"`
	WatchGoroutinesPerWatch float64 `json:"watch_goroutines_per_watch"`
	// Of those, the HTTP/2 connections' own (not per stream).
	WatchConnGoroutinesPerWatch float64 `json:"watch_connection_goroutines_per_watch"`
	WatchLagP99Ratio            float64 `json:"watch_lag_p99_ratio"`
	// A's merged /apis p50 over its profile=nopeer answer; A's idle CPU
	// (percent of one core) and live heap, gate on minus gate off; the
	// slowest server to drop a deleted CRD (-1: not within 90 s).
	DiscoveryMergedP50Ratio float64 `json:"discovery_merged_p50_ratio"`
	MVPIdleCPUPct           float64 `json:"mvp_idle_cpu_pct"`
	MVPHeapOverheadMB       float64 `json:"mvp_heap_overhead_mb"`
	CRDRemovalS             float64 `json:"crd_removal_s"`
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
		RPSRatioC8:   round(div(r.proxied.RPS, r.direct.RPS), 3),
		DirectP50ms:  round(ms(r.direct.P50), 3),
		ProxiedP50ms: round(ms(r.proxied.P50), 3),

		WatchHeapPerWatchKB:         round(r.watch.ProxyHeapKB, 1),
		WatchGoroutinesPerWatch:     round(r.watch.ProxyGoroutines, 2),
		WatchConnGoroutinesPerWatch: round(r.watch.ProxyConnGoroutines, 3),
		WatchLagP99Ratio:            round(ratio(r.watch.ProxiedLag.P99, r.watch.DirectLag.P99), 2),

		DiscoveryMergedP50Ratio: round(ratio(r.discovery.MergedP50, r.discovery.NoPeerP50), 3),
		MVPIdleCPUPct:           round(r.discovery.IdleCPUOn-r.discovery.IdleCPUOff, 2),
		MVPHeapOverheadMB:       round(r.discovery.HeapOnMB-r.discovery.HeapOffMB, 1),
		CRDRemovalS:             removalSeconds(r.discovery),
	}
}

func removalSeconds(d discoveryFigures) float64 {
	if d.RemovalTimedOut {
		return -1
	}
	return round(d.RemovalMax.Seconds(), 3)
}

func ratio(a, b time.Duration) float64 { return div(float64(a), float64(b)) }

// div is a / b, or 0 for a phase that did not run (JSON has no NaN).
func div(a, b float64) float64 {
	if b == 0 {
		return 0
	}
	return a / b
}
func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
func round(v float64, places int) float64 {
	p := math.Pow(10, float64(places))
	return math.Round(v*p) / p
}
