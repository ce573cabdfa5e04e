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
	"path/filepath"
	"slices"
	"sync"
	"time"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/plotutil"
	"gonum.org/v1/plot/vg"

	"github.com/mvp-apiserver/kube-apiserver/test/e2e/harness"
)

// measure reads one server's figures: its live heap after a collection,
// and its goroutines and open files from /metrics.
func measure(ctx context.Context, sl *slot) (figures, error) {
	url := sl.server().URL
	heap, err := harness.LiveHeap(ctx, sl.http, url)
	if err != nil {
		return figures{}, err
	}
	text, err := harness.Fetch(ctx, sl.http, url+"/metrics")
	if err != nil {
		return figures{}, err
	}
	g, err := harness.ParseMetric(text, "go_goroutines")
	if err != nil {
		return figures{}, err
	}
	fds, err := harness.ParseMetric(text, "process_open_fds")
	if err != nil {
		return figures{}, err
	}
	return figures{HeapMiB: float64(heap) / (1 << 20), Goroutines: g, OpenFiles: fds}, nil
}

// settleAndMeasure waits settle, then takes each of our servers' figures:
// the median of three readings a few seconds apart, each figure on its own.
func settleAndMeasure(ctx context.Context, settle time.Duration, slots []*slot) map[string]figures {
	harness.Pause(ctx, settle)
	out := map[string]figures{}
	for _, sl := range slots {
		if !sl.ours {
			continue
		}
		var rs []figures
		for i := 0; i < 3 && ctx.Err() == nil; i++ {
			if f, err := measure(ctx, sl); err == nil {
				rs = append(rs, f)
			}
			harness.Pause(ctx, 3*time.Second)
		}
		if len(rs) > 0 {
			out[sl.name] = median(rs)
		}
	}
	return out
}

func median(rs []figures) figures {
	mid := func(of func(figures) float64) float64 {
		vs := make([]float64, len(rs))
		for i, r := range rs {
			vs[i] = of(r)
		}
		slices.Sort(vs)
		return vs[len(vs)/2]
	}
	return figures{HeapMiB: mid(metrics[0].of), Goroutines: mid(metrics[1].of), OpenFiles: mid(metrics[2].of)}
}

// startSampling records our servers' figures every interval into res
// (a server that is restarting is skipped); stop ends it.
func startSampling(ctx context.Context, every time.Duration, slots []*slot, res *result) (stop func()) {
	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Go(func() {
		for ctx.Err() == nil {
			for _, sl := range slots {
				if !sl.ours {
					continue
				}
				if f, err := measure(ctx, sl); err == nil {
					res.addSample(sample{Seconds: time.Since(res.Started).Seconds(), Server: sl.name, figures: f})
				}
			}
			harness.Pause(ctx, every)
		}
	})
	return func() { cancel(); wg.Wait() }
}

// plot draws one SVG per figure over time, a line per server, with the
// restarts as points on the time axis.
func (r *result) plot(out string) error {
	files := []string{"soak-heap.svg", "soak-goroutines.svg", "soak-open-files.svg"}
	for i, m := range metrics {
		p := plot.New()
		p.Title.Text = "make soak: " + m.name + " of our servers"
		p.X.Label.Text = "minutes"
		p.Y.Label.Text = m.name + unitSuffix(m.unit)
		var lines []any
		for _, server := range r.servers() {
			var xys plotter.XYs
			for _, s := range r.Samples {
				if s.Server == server {
					xys = append(xys, plotter.XY{X: s.Seconds / 60, Y: m.of(s.figures)})
				}
			}
			lines = append(lines, server, xys)
		}
		if err := plotutil.AddLinePoints(p, lines...); err != nil {
			return err
		}
		if err := r.addRestarts(p); err != nil {
			return err
		}
		if err := p.Save(9*vg.Inch, 4*vg.Inch, filepath.Join(out, files[i])); err != nil {
			return fmt.Errorf("plotting %s: %w", m.name, err)
		}
	}
	return nil
}

// addRestarts marks each restart on the time axis.
func (r *result) addRestarts(p *plot.Plot) error {
	var xys plotter.XYs
	for _, ev := range r.Restarts {
		xys = append(xys, plotter.XY{X: ev.At.Sub(r.Started).Minutes(), Y: 0})
	}
	if len(xys) == 0 {
		return nil
	}
	sc, err := plotter.NewScatter(xys)
	if err != nil {
		return err
	}
	p.Add(sc)
	p.Legend.Add("restart", sc)
	return nil
}

// servers are the sampled servers, in name order.
func (r *result) servers() []string {
	var names []string
	for _, s := range r.Samples {
		if !slices.Contains(names, s.Server) {
			names = append(names, s.Server)
		}
	}
	slices.Sort(names)
	return names
}
