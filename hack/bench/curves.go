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
	"path/filepath"
	"text/tabwriter"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/plotutil"
	"gonum.org/v1/plot/vg"
)

// figure is one figure of a curve: a row of the growth table and a plot.
type figure[T any] struct {
	name, label, unit, format string
	of                        func(T) float64
}

var watchFigs = []figure[watchPoint]{
	{"watch-heap", "A heap per proxied watch", "KiB", "%.1f", func(p watchPoint) float64 { return p.HeapPerWatchKB }},
	{"watch-goroutines", "A stream goroutines per proxied watch", "", "%.3f", func(p watchPoint) float64 { return p.StreamGoroutinesPerWatch }},
	{"", "A connection goroutines per proxied watch", "", "%.3f", func(p watchPoint) float64 { return p.ConnGoroutinesPerWatch }},
	{"watch-open", "time to open the proxied watches", "s", "%.2f", func(p watchPoint) float64 { return p.OpenProxiedS }},
	{"", "time to open the direct watches", "s", "%.2f", func(p watchPoint) float64 { return p.OpenDirectS }},
	{"", "lag p50 direct", "ms", "%.1f", func(p watchPoint) float64 { return p.LagP50DirectMs }},
	{"", "lag p50 proxied", "ms", "%.1f", func(p watchPoint) float64 { return p.LagP50ProxiedMs }},
	{"", "lag p99 direct", "ms", "%.1f", func(p watchPoint) float64 { return p.LagP99DirectMs }},
	{"", "lag p99 proxied", "ms", "%.1f", func(p watchPoint) float64 { return p.LagP99ProxiedMs }},
	{"watch-lag", "lag p99 proxied / direct", "", "%.2f", func(p watchPoint) float64 { return p.LagP99Ratio }},
	{"", "watchers with every event once", "", "%.0f", func(p watchPoint) float64 { return float64(p.Complete) }},
}

var crdFigs = []figure[crdPoint]{
	{"", "merged /apis through A", "kB", "%.0f", func(p crdPoint) float64 { return p.MergedKB }},
	{"", "merged /apis p50", "ms", "%.2f", func(p crdPoint) float64 { return p.MergedP50Ms }},
	{"", "nopeer /apis p50", "ms", "%.2f", func(p crdPoint) float64 { return p.NoPeerP50Ms }},
	{"crd-merged", "merged / nopeer p50", "", "%.3f", func(p crdPoint) float64 { return p.MergedP50Ratio }},
	{"", "new CRD listed everywhere p50", "s", "%.3f", func(p crdPoint) float64 { return p.VisibleP50S }},
	{"crd-visible", "new CRD listed everywhere p99", "s", "%.3f", func(p crdPoint) float64 { return p.VisibleP99S }},
	{"crd-removal", "deleted CRD gone everywhere", "s", "%.3f", func(p crdPoint) float64 { return p.RemovalS }},
	{"", "A live heap, gate on", "MB", "%.1f", func(p crdPoint) float64 { return p.HeapOnMB }},
	{"", "A live heap, gate off", "MB", "%.1f", func(p crdPoint) float64 { return p.HeapOffMB }},
	{"crd-memory", "the MVP's heap on A (on - off)", "MB", "%.1f", func(p crdPoint) float64 { return p.MVPHeapMB }},
	{"", "A heap settled after (longer of on, off)", "s", "%.1f", func(p crdPoint) float64 { return p.HeapSettleS }},
}

var serverFigs = []figure[serverPoint]{
	{"", "idle CPU per server, gate on", "% core", "%.2f", func(p serverPoint) float64 { return p.IdleCPUOnPct }},
	{"", "idle CPU per server, gate off", "% core", "%.2f", func(p serverPoint) float64 { return p.IdleCPUOffPct }},
	{"servers-cpu", "the MVP's idle CPU per server (on - off)", "% core", "%.2f", func(p serverPoint) float64 { return p.MVPIdleCPUPct }},
	{"servers-traffic", "peer traffic per server", "B/min", "%.0f", func(p serverPoint) float64 { return p.PeerBytesPerMin }},
	{"", "peer traffic per server and peer", "B/min", "%.0f", func(p serverPoint) float64 { return p.PeerBytesPerMinPerPeer }},
	{"", "peer traffic per server, gate off", "B/min", "%.0f", func(p serverPoint) float64 { return p.PeerBytesPerMinGateOff }},
	{"servers-join", "new server proxied to by every peer", "s", "%.3f", func(p serverPoint) float64 { return p.JoinProxiedS }},
}

// printGrowth prints each curve measured: a row per figure, a column per
// size, each cell "ours / upstream".
func printGrowth(w io.Writer, rep growthReport) {
	printCurve(w, "proxied watches (watches through A, as many direct on B)", rep.Watches, watchFigs)
	printCurve(w, "CRDs on three servers", rep.CRDs, crdFigs)
	printCurve(w, "servers", rep.Servers, serverFigs)
}

func printCurve[T any](w io.Writer, title string, pts []growthPoint[T], figs []figure[T]) {
	if len(pts) == 0 {
		return
	}
	fmt.Fprintf(w, "\n==> Growth: %s; each cell ours / upstream\n", title)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprint(tw, "size\t")
	for _, p := range pts {
		fmt.Fprintf(tw, "%d\t", p.Size)
	}
	fmt.Fprintln(tw)
	for _, f := range figs {
		label := f.label
		if f.unit != "" {
			label += " (" + f.unit + ")"
		}
		fmt.Fprintf(tw, "%s\t", label)
		for _, p := range pts {
			fmt.Fprintf(tw, f.format+" / "+f.format+"\t", f.of(p.Ours), f.of(p.Upstream))
		}
		fmt.Fprintln(tw)
	}
	_ = tw.Flush()
}

// growthTargets are the growth curves' goals, each checked at the
// largest size measured (a curve not measured has none).
func growthTargets(rep growthReport) []benchTarget {
	var ts []benchTarget
	if n := len(rep.Watches); n > 0 {
		top := rep.Watches[n-1]
		o, u := top.Ours, top.Upstream
		at := fmt.Sprintf(" at %d watches", top.Size)
		ts = append(ts,
			benchTarget{"heap per proxied watch <= 24 KiB" + at, o.HeapPerWatchKB <= 24, fmt.Sprintf("%.1f KiB (upstream %.1f)", o.HeapPerWatchKB, u.HeapPerWatchKB)},
			benchTarget{"stream goroutines per watch <= 2.0" + at, o.StreamGoroutinesPerWatch <= 2.0, fmt.Sprintf("%.3f (upstream %.3f)", o.StreamGoroutinesPerWatch, u.StreamGoroutinesPerWatch)},
			benchTarget{"watch lag p99 ratio <= 1.2" + at, o.LagP99Ratio <= 1.2, fmt.Sprintf("%.2f (upstream %.2f)", o.LagP99Ratio, u.LagP99Ratio)},
			benchTarget{"every watcher every event once" + at, o.Complete == o.Watchers, fmt.Sprintf("%d of %d", o.Complete, o.Watchers)},
		)
	}
	if n := len(rep.CRDs); n > 0 {
		top := rep.CRDs[n-1]
		o, u := top.Ours, top.Upstream
		at := fmt.Sprintf(" at %d CRDs", top.Size)
		ts = append(ts,
			benchTarget{"merged/nopeer /apis p50 <= 1.1" + at, o.MergedP50Ratio <= 1.1, fmt.Sprintf("%.3f (upstream %.3f)", o.MergedP50Ratio, u.MergedP50Ratio)},
			benchTarget{"new CRD everywhere p99 <= 2 s" + at, o.VisibleP99S >= 0 && o.VisibleP99S <= 2, fmt.Sprintf("%.3f s (upstream %.3f)", o.VisibleP99S, u.VisibleP99S)},
			benchTarget{"deleted CRD gone everywhere <= 1 s" + at, o.RemovalS >= 0 && o.RemovalS <= 1, fmt.Sprintf("%.3f s (upstream %.3f)", o.RemovalS, u.RemovalS)},
			benchTarget{"MVP heap no more than upstream's" + at, o.MVPHeapMB <= u.MVPHeapMB, fmt.Sprintf("%.1f MB vs %.1f", o.MVPHeapMB, u.MVPHeapMB)},
		)
	}
	if n := len(rep.Servers); n > 0 {
		first, top := rep.Servers[0], rep.Servers[n-1]
		o, u := top.Ours, top.Upstream
		at := fmt.Sprintf(" at %d servers", top.Size)
		// Linear: what a server exchanges with each peer does not grow
		// with the number of peers (beyond a quarter, for noise).
		perPeer := div(o.PeerBytesPerMinPerPeer, first.Ours.PeerBytesPerMinPerPeer)
		ts = append(ts,
			benchTarget{"MVP idle CPU <= 0.5 pt per server" + at, o.MVPIdleCPUPct <= 0.5, fmt.Sprintf("%.2f (upstream %.2f)", o.MVPIdleCPUPct, u.MVPIdleCPUPct)},
			benchTarget{fmt.Sprintf("peer traffic linear (per peer, %d vs %d) <= 1.25", top.Size, first.Size), n > 1 && perPeer <= 1.25,
				fmt.Sprintf("%.2f (%.0f vs %.0f B/min per peer)", perPeer, o.PeerBytesPerMinPerPeer, first.Ours.PeerBytesPerMinPerPeer)},
			benchTarget{"new server proxied to within 5 s" + at, o.JoinProxiedS >= 0 && o.JoinProxiedS <= 5, fmt.Sprintf("%.3f s (upstream %.3f)", o.JoinProxiedS, u.JoinProxiedS)},
		)
	}
	return ts
}

// plotGrowth draws each named figure of the curves measured into
// <prefix>-<name>.svg, ours and upstream on the same axes, and returns
// the files.
func plotGrowth(prefix string, rep growthReport) ([]string, error) {
	var files []string
	add := func(fs []string, err error) error {
		files = append(files, fs...)
		return err
	}
	if err := add(plotCurve(prefix, "proxied watches (as many direct)", rep.Watches, watchFigs)); err != nil {
		return files, err
	}
	if err := add(plotCurve(prefix, "CRDs (three servers)", rep.CRDs, crdFigs)); err != nil {
		return files, err
	}
	return files, add(plotCurve(prefix, "servers", rep.Servers, serverFigs))
}

func plotCurve[T any](prefix, xLabel string, pts []growthPoint[T], figs []figure[T]) ([]string, error) {
	if len(pts) == 0 {
		return nil, nil
	}
	var files []string
	for _, f := range figs {
		if f.name == "" {
			continue
		}
		p := plot.New()
		p.Title.Text = f.label
		p.X.Label.Text = xLabel
		p.Y.Label.Text = f.unit
		var ours, up plotter.XYs
		for _, pt := range pts {
			ours = append(ours, plotter.XY{X: float64(pt.Size), Y: f.of(pt.Ours)})
			up = append(up, plotter.XY{X: float64(pt.Size), Y: f.of(pt.Upstream)})
		}
		if err := plotutil.AddLinePoints(p, "ours", ours, "upstream", up); err != nil {
			return files, err
		}
		p.Legend.Top = true
		path := prefix + "-" + f.name + ".svg"
		if err := p.Save(5*vg.Inch, 3*vg.Inch, path); err != nil {
			return files, fmt.Errorf("plotting %s: %w", f.name, err)
		}
		files = append(files, filepath.Base(path))
	}
	return files, nil
}
