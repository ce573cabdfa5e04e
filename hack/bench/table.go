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
	row := func(label, format string, a, b float64) {
		fmt.Fprintf(tw, "%s\t"+format+"\t"+format+"\t\n", label, a, b)
	}
	row("GET c1 direct p50 (ms)", "%.3f", ms(ours.direct.P50), ms(up.direct.P50))
	row("GET c1 proxied p50 (ms)", "%.3f", ms(ours.proxied.P50), ms(up.proxied.P50))
	row("p50 ratio", "%.2f", rep.Ours.P50RatioC1, rep.Upstream.P50RatioC1)
	row("GET c1 direct p99 (ms)", "%.3f", ms(ours.direct.P99), ms(up.direct.P99))
	row("GET c1 proxied p99 (ms)", "%.3f", ms(ours.proxied.P99), ms(up.proxied.P99))
	row("p99 ratio", "%.2f", rep.Ours.P99RatioC1, rep.Upstream.P99RatioC1)
	row("GET c8 direct (req/s)", "%.0f", ours.direct.RPS, up.direct.RPS)
	row("GET c8 proxied (req/s)", "%.0f", ours.proxied.RPS, up.proxied.RPS)
	row("rps ratio", "%.2f", rep.Ours.RPSRatioC8, rep.Upstream.RPSRatioC8)
	row("LIST through A (MB)", "%.1f", float64(ours.list.Bytes)/1e6, float64(up.list.Bytes)/1e6)
	row("LIST time (s)", "%.1f", ours.list.Took.Seconds(), up.list.Took.Seconds())
	row("A live heap before (MB)", "%.1f", ours.list.BaselineMB, up.list.BaselineMB)
	row("A live heap peak (MB)", "%.1f", ours.list.PeakMB, up.list.PeakMB)
	row("A heap growth (MB)", "%.1f", ours.list.GrowthMB, up.list.GrowthMB)
	_ = tw.Flush()
	fmt.Fprintf(w, "Filter, locally served request: %.1f ns/op, %.0f allocs/op (median of %d runs)\n", filt.NsOp, filt.AllocsOp, filt.Runs)
	fmt.Fprintf(w, "Requests measured per path: %d at c1, %d in all (ours)\n", ours.proxied.Requests, ours.proxied.Total)

	targets := []struct {
		name string
		met  bool
		got  string
	}{
		{"ours p50 ratio <= 1.8", rep.Ours.P50RatioC1 <= 1.8, fmt.Sprintf("%.2f", rep.Ours.P50RatioC1)},
		{"ours p50 ratio below upstream's", rep.Ours.P50RatioC1 < rep.Upstream.P50RatioC1, fmt.Sprintf("%.2f vs %.2f", rep.Ours.P50RatioC1, rep.Upstream.P50RatioC1)},
		{"ours rps ratio >= 0.5", rep.Ours.RPSRatioC8 >= 0.5, fmt.Sprintf("%.2f", rep.Ours.RPSRatioC8)},
		{"ours rps ratio above upstream's", rep.Ours.RPSRatioC8 > rep.Upstream.RPSRatioC8, fmt.Sprintf("%.2f vs %.2f", rep.Ours.RPSRatioC8, rep.Upstream.RPSRatioC8)},
		{"filter local path <= 200 ns/op", rep.FilterLocalNsOp <= 200, fmt.Sprintf("%.1f", rep.FilterLocalNsOp)},
		{"filter local path 0 allocs/op", rep.FilterLocalAllocsOp == 0, fmt.Sprintf("%.0f", rep.FilterLocalAllocsOp)},
		{"LIST of at least 100 MB", rep.ListSizeMB >= 100, fmt.Sprintf("%.1f MB", rep.ListSizeMB)},
		{"LIST heap growth <= 15% of its size", rep.ListProxyHeapGrowthMB <= 0.15*rep.ListSizeMB,
			fmt.Sprintf("%.1f MB (%.1f%%)", rep.ListProxyHeapGrowthMB, 100*rep.ListProxyHeapGrowthMB/rep.ListSizeMB)},
	}
	fmt.Fprintln(w, "\n==> Targets")
	missed := 0
	for _, t := range targets {
		verdict := "met"
		if !t.met {
			verdict, missed = "MISSED", missed+1
		}
		fmt.Fprintf(w, "  %-6s %-38s %s\n", verdict, t.name, t.got)
	}
	return missed
}
