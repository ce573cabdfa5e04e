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
	"fmt"
	"io"
	"text/tabwriter"
)

// printTable prints both pairs' figures and every target with whether it
// was met; it returns how many were missed.
func printTable(w io.Writer, results map[string]pairResult, filt filterFigures, rep report) int {
	ours, up := results["ours"], results["upstream"]
	fmt.Fprintln(w, "\n==> Results (ratios are proxied / direct)")
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "\tours\tupstream\t")
	for _, sec := range tableSections(ours, up, rep) {
		fmt.Fprintf(tw, "%s:\t\t\t\n", sec.title)
		for _, r := range sec.rows {
			fmt.Fprintf(tw, "%s\t"+r.format+"\t"+r.format+"\t\n", r.label, r.ours, r.upstream)
		}
	}
	_ = tw.Flush()
	fmt.Fprintf(w, "Filter, locally served request: %.1f ns/op, %.0f allocs/op (median of %d runs)\n", filt.NsOp, filt.AllocsOp, filt.Runs)
	fmt.Fprintf(w, "Requests measured per path: %d at c1, %d in all (ours)\n", ours.proxied.Requests, ours.proxied.Total)

	return printTargets(w, "Targets", targetsOf(rep))
}

// printTargets prints each target with whether it was met and returns
// how many were missed.
func printTargets(w io.Writer, title string, targets []benchTarget) int {
	if len(targets) == 0 {
		return 0
	}
	fmt.Fprintf(w, "\n==> %s\n", title)
	missed := 0
	for _, t := range targets {
		verdict := "met"
		if !t.met {
			verdict, missed = "MISSED", missed+1
		}
		fmt.Fprintf(w, "  %-6s %-50s %s\n", verdict, t.name, t.got)
	}
	return missed
}

// target is one goal of make bench and whether this run met it.
type benchTarget struct {
	name string
	met  bool
	got  string
}

func targetsOf(rep report) []benchTarget {
	o, u := rep.Ours, rep.Upstream
	return []benchTarget{
		{"ours p50 ratio <= 1.5", o.P50RatioC1 <= 1.5, fmt.Sprintf("%.2f", o.P50RatioC1)},
		{"ours p50 ratio 25% below upstream's", o.P50RatioC1 <= 0.75*u.P50RatioC1, fmt.Sprintf("%.2f vs %.2f", o.P50RatioC1, u.P50RatioC1)},
		{"ours rps ratio >= 0.60", o.RPSRatioC8 >= 0.60, fmt.Sprintf("%.2f", o.RPSRatioC8)},
		{"ours rps ratio 25% above upstream's", o.RPSRatioC8 >= 1.25*u.RPSRatioC8, fmt.Sprintf("%.2f vs %.2f", o.RPSRatioC8, u.RPSRatioC8)},
		{"filter local path <= 200 ns/op", rep.FilterLocalNsOp <= 200, fmt.Sprintf("%.1f", rep.FilterLocalNsOp)},
		{"filter local path 0 allocs/op", rep.FilterLocalAllocsOp == 0, fmt.Sprintf("%.0f", rep.FilterLocalAllocsOp)},
		{"ours heap per proxied watch <= 24 KiB", o.WatchHeapPerWatchKB <= 24, fmt.Sprintf("%.1f KiB (upstream %.1f)", o.WatchHeapPerWatchKB, u.WatchHeapPerWatchKB)},
		{"ours stream goroutines per proxied watch <= 2", o.WatchGoroutinesPerWatch-o.WatchConnGoroutinesPerWatch <= 2,
			fmt.Sprintf("%.3f (upstream %.3f)", o.WatchGoroutinesPerWatch-o.WatchConnGoroutinesPerWatch, u.WatchGoroutinesPerWatch-u.WatchConnGoroutinesPerWatch)},
		{"ours watch lag p99 ratio <= 1.5", o.WatchLagP99Ratio <= 1.5, fmt.Sprintf("%.2f (upstream %.2f)", o.WatchLagP99Ratio, u.WatchLagP99Ratio)},
		{"LIST of at least 100 MB", rep.ListSizeMB >= 100, fmt.Sprintf("%.1f MB", rep.ListSizeMB)},
		{"LIST heap growth <= 15% of its size", rep.ListProxyHeapGrowthMB <= 0.15*rep.ListSizeMB,
			fmt.Sprintf("%.1f MB (%.1f%%)", rep.ListProxyHeapGrowthMB, 100*rep.ListProxyHeapGrowthMB/rep.ListSizeMB)},
		{"ours merged/nopeer /apis p50 <= 1.1", o.DiscoveryMergedP50Ratio <= 1.1, fmt.Sprintf("%.3f (upstream %.3f)", o.DiscoveryMergedP50Ratio, u.DiscoveryMergedP50Ratio)},
		{"ours MVP idle CPU <= 0.5% of a core", o.MVPIdleCPUPct <= 0.5, fmt.Sprintf("%.2f (upstream %.2f)", o.MVPIdleCPUPct, u.MVPIdleCPUPct)},
		{"ours CRD removal <= 1 s on every server", o.CRDRemovalS >= 0 && o.CRDRemovalS <= 1, fmt.Sprintf("%.3f s (upstream %.3f)", o.CRDRemovalS, u.CRDRemovalS)},
	}
}

// tableRow is one figure of both implementations.
type tableRow struct {
	label, format  string
	ours, upstream float64
}

type tableSection struct {
	title string
	rows  []tableRow
}

// tableSections lays out the results table: every figure for ours and
// for upstream, by phase.
func tableSections(o, u pairResult, rep report) []tableSection {
	c := columns{o, u, rep}
	return []tableSection{c.getSection(), c.watchSection(), c.listSection(), c.discoverySection()}
}

// columns builds rows with ours and upstream side by side, from a run's
// results or from its report.
type columns struct {
	ours, upstream pairResult
	rep            report
}

func (c columns) both(label, format string, f func(pairResult) float64) tableRow {
	return tableRow{label, format, f(c.ours), f(c.upstream)}
}

func (c columns) reported(label, format string, f func(pairReport) float64) tableRow {
	return tableRow{label, format, f(c.rep.Ours), f(c.rep.Upstream)}
}

// getSection holds GET latency and throughput on one Job.
func (c columns) getSection() tableSection {
	return tableSection{"one Job, GET", []tableRow{
		c.both("GET c1 direct p50 (ms)", "%.3f", func(r pairResult) float64 { return ms(r.direct.P50) }),
		c.both("GET c1 proxied p50 (ms)", "%.3f", func(r pairResult) float64 { return ms(r.proxied.P50) }),
		c.reported("p50 ratio", "%.2f", func(r pairReport) float64 { return r.P50RatioC1 }),
		c.both("GET c1 direct p99 (ms)", "%.3f", func(r pairResult) float64 { return ms(r.direct.P99) }),
		c.both("GET c1 proxied p99 (ms)", "%.3f", func(r pairResult) float64 { return ms(r.proxied.P99) }),
		c.reported("p99 ratio", "%.2f", func(r pairReport) float64 { return r.P99RatioC1 }),
		c.both("GET c8 direct (req/s)", "%.0f", func(r pairResult) float64 { return r.direct.RPS }),
		c.both("GET c8 proxied (req/s)", "%.0f", func(r pairResult) float64 { return r.proxied.RPS }),
		c.reported("rps ratio", "%.2f", func(r pairReport) float64 { return r.RPSRatioC8 }),
	}}
}

// watchSection holds the cost and lag of watches on Jobs.
func (c columns) watchSection() tableSection {
	return tableSection{"watches on Jobs", []tableRow{
		c.both("watches per path", "%.0f", func(r pairResult) float64 { return float64(r.watch.Watches) }),
		c.both("A heap per proxied watch (KiB)", "%.1f", func(r pairResult) float64 { return r.watch.ProxyHeapKB }),
		c.both("A goroutines per proxied watch", "%.2f", func(r pairResult) float64 { return r.watch.ProxyGoroutines }),
		c.both("  of which HTTP/2 connections'", "%.2f", func(r pairResult) float64 { return r.watch.ProxyConnGoroutines }),
		c.both("B heap per direct watch (KiB)", "%.1f", func(r pairResult) float64 { return r.watch.DirectHeapKB }),
		c.both("B goroutines per direct watch", "%.2f", func(r pairResult) float64 { return r.watch.DirectGoroutines }),
		c.both("  of which HTTP/2 connections'", "%.2f", func(r pairResult) float64 { return r.watch.DirectConnGoroutines }),
		c.both("lag direct p50 (ms)", "%.1f", func(r pairResult) float64 { return ms(r.watch.DirectLag.P50) }),
		c.both("lag proxied p50 (ms)", "%.1f", func(r pairResult) float64 { return ms(r.watch.ProxiedLag.P50) }),
		c.both("lag direct p99 (ms)", "%.1f", func(r pairResult) float64 { return ms(r.watch.DirectLag.P99) }),
		c.both("lag proxied p99 (ms)", "%.1f", func(r pairResult) float64 { return ms(r.watch.ProxiedLag.P99) }),
		c.reported("lag p99 ratio", "%.2f", func(r pairReport) float64 { return r.WatchLagP99Ratio }),
	}}
}

// listSection holds the proxying server's heap while a large LIST passes.
func (c columns) listSection() tableSection {
	return tableSection{"a large LIST through A", []tableRow{
		c.both("LIST (MB)", "%.1f", func(r pairResult) float64 { return float64(r.list.Bytes) / 1e6 }),
		c.both("LIST time (s)", "%.1f", func(r pairResult) float64 { return r.list.Took.Seconds() }),
		c.both("A live heap before (MB)", "%.1f", func(r pairResult) float64 { return r.list.BaselineMB }),
		c.both("A live heap peak (MB)", "%.1f", func(r pairResult) float64 { return r.list.PeakMB }),
		c.both("A heap growth (MB)", "%.1f", func(r pairResult) float64 { return r.list.GrowthMB }),
	}}
}

// discoverySection holds merged discovery's size, latency and idle cost.
func (c columns) discoverySection() tableSection {
	return tableSection{"merged discovery, three servers", []tableRow{
		c.both("CRDs (a group each)", "%.0f", func(r pairResult) float64 { return float64(r.discovery.CRDs) }),
		c.both("merged /apis through A (kB)", "%.0f", func(r pairResult) float64 { return float64(r.discovery.MergedBytes) / 1e3 }),
		c.both("merged /apis p50 (ms)", "%.2f", func(r pairResult) float64 { return ms(r.discovery.MergedP50) }),
		c.both("nopeer /apis p50 (ms)", "%.2f", func(r pairResult) float64 { return ms(r.discovery.NoPeerP50) }),
		c.reported("merged/nopeer p50 ratio", "%.3f", func(r pairReport) float64 { return r.DiscoveryMergedP50Ratio }),
		c.reported("CRD removal, slowest server (s)", "%.3f", func(r pairReport) float64 { return r.CRDRemovalS }),
		c.both("A idle CPU, gate on (% core)", "%.2f", func(r pairResult) float64 { return r.discovery.IdleCPUOn }),
		c.both("A idle CPU, gate off (% core)", "%.2f", func(r pairResult) float64 { return r.discovery.IdleCPUOff }),
		c.both("A live heap, gate on (MB)", "%.1f", func(r pairResult) float64 { return r.discovery.HeapOnMB }),
		c.both("A live heap, gate off (MB)", "%.1f", func(r pairResult) float64 { return r.discovery.HeapOffMB }),
	}}
}
