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
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"
)

// maxGrowth is how far above its baseline any of our servers' figures
// may end.
const maxGrowth = 1.10

// figures are one server's resource use at one time.
type figures struct {
	HeapMiB    float64 `json:"liveHeapMiB"`
	Goroutines float64 `json:"goroutines"`
	OpenFiles  float64 `json:"openFiles"`
}

// metrics name figures' fields, in the order they are reported.
var metrics = []struct {
	name, unit string
	of         func(figures) float64
}{
	{"live heap", "MiB", func(f figures) float64 { return f.HeapMiB }},
	{"goroutines", "", func(f figures) float64 { return f.Goroutines }},
	{"open files", "", func(f figures) float64 { return f.OpenFiles }},
}

type sample struct {
	Seconds float64 `json:"seconds"`
	Server  string  `json:"server"`
	figures
}

type restartEvent struct {
	Server       string    `json:"server"`
	At           time.Time `json:"at"`
	StopSeconds  float64   `json:"stopSeconds"`
	ReadySeconds float64   `json:"readySeconds"`
}

type watcherResult struct {
	Server       string   `json:"server"`
	Index        int      `json:"index"`
	Streams      int      `json:"streams"`
	Lists        int      `json:"lists"`
	NotOnceCount int      `json:"jobsNotSeenExactlyOnce"`
	NotOnce      []string `json:"notOnceSamples,omitempty"`
	OutOfOrder   []string `json:"outOfOrder,omitempty"`
}

// result is the soak's record, written as soak.json.
type result struct {
	Options  map[string]string     `json:"options"`
	Started  time.Time             `json:"started"`
	Seconds  float64               `json:"seconds"`
	Restarts []restartEvent        `json:"restarts"`
	Baseline map[string]figures    `json:"baseline"` // after the first restart
	Final    map[string]figures    `json:"final"`
	Samples  []sample              `json:"samples"`
	Reads    map[string]*readTally `json:"reads"`
	Created  int                   `json:"created"`
	Stored   int                   `json:"stored"`
	Watchers []watcherResult       `json:"watchers"`
	Problems []string              `json:"problems"`
	Passed   bool                  `json:"passed"`
	mu       sync.Mutex
}

func (o options) describe() map[string]string {
	return map[string]string{"duration": o.duration.String(), "restartEvery": o.restartEvery.String(),
		"sampleEvery": o.sampleEvery.String(), "settle": o.settle.String(), "createEvery": o.createEvery.String(),
		"watchersPerServer": fmt.Sprint(o.watchers)}
}

func (r *result) addRestart(ev restartEvent) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.Restarts = append(r.Restarts, ev)
}

func (r *result) addSample(s sample) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.Samples = append(r.Samples, s)
}

func (r *result) addWatcher(server string, i int, w watcherResult) {
	r.mu.Lock()
	defer r.mu.Unlock()
	w.Server, w.Index = server, i
	r.Watchers = append(r.Watchers, w)
}

// judge lists what failed and sets Passed.
func (r *result) judge() {
	r.Seconds = time.Since(r.Started).Seconds()
	for _, server := range slices.Sorted(maps.Keys(r.Baseline)) {
		final, ok := r.Final[server]
		if !ok {
			r.Problems = append(r.Problems, server+": no figures at the end")
			continue
		}
		for _, m := range metrics {
			if b, f := m.of(r.Baseline[server]), m.of(final); b > 0 && f > b*maxGrowth {
				r.Problems = append(r.Problems, fmt.Sprintf("%s: %s %.1f at the end, %.1f after the first restart (+%.1f%%, more than %.0f%%)",
					server, m.name, f, b, 100*(f/b-1), 100*(maxGrowth-1)))
			}
		}
	}
	if len(r.Baseline) == 0 {
		r.Problems = append(r.Problems, "no baseline: the first restart did not complete")
	}
	for server, t := range r.Reads {
		if t.FalseNotFound > 0 {
			r.Problems = append(r.Problems, fmt.Sprintf("%s: %d false 404s", server, t.FalseNotFound))
		}
	}
	for _, w := range r.Watchers {
		if w.NotOnceCount > 0 || len(w.OutOfOrder) > 0 {
			r.Problems = append(r.Problems, fmt.Sprintf("watcher %d through %s: %d Jobs not seen exactly once %v, out of order %v",
				w.Index, w.Server, w.NotOnceCount, w.NotOnce, w.OutOfOrder))
		}
	}
	r.Passed = len(r.Problems) == 0
}

// summary is the soak's one line.
func (r *result) summary() string {
	var reads, notFound, unavailable, other int
	for _, t := range r.Reads {
		reads, notFound, unavailable, other = reads+t.Requests, notFound+t.FalseNotFound, unavailable+t.Unavailable, other+t.Other
	}
	exact := 0
	for _, w := range r.Watchers {
		if w.NotOnceCount == 0 && len(w.OutOfOrder) == 0 {
			exact++
		}
	}
	parts := []string{fmt.Sprintf("soak %s: %d restarts; %d reads, %d false 404, %d × 503, %d other errors; %d Jobs, %d of %d watchers saw each exactly once in order",
		(time.Duration(r.Seconds) * time.Second).String(), len(r.Restarts), reads, notFound, unavailable, other, r.Stored, exact, len(r.Watchers))}
	for _, server := range slices.Sorted(maps.Keys(r.Baseline)) {
		var ms []string
		for _, m := range metrics {
			b, f := m.of(r.Baseline[server]), m.of(r.Final[server])
			ms = append(ms, fmt.Sprintf("%s %.1f→%.1f%s (%+.1f%%)", m.name, b, f, unitSuffix(m.unit), pct(b, f)))
		}
		parts = append(parts, server+" "+strings.Join(ms, ", "))
	}
	verdict := "PASS"
	if !r.Passed {
		verdict = "FAIL: " + strings.Join(r.Problems, "; ")
	}
	return strings.Join(parts, "; ") + ": " + verdict
}

func unitSuffix(u string) string {
	if u == "" {
		return ""
	}
	return " " + u
}

func pct(base, final float64) float64 {
	if base == 0 {
		return 0
	}
	return 100 * (final/base - 1)
}

// write saves soak.json and the plots in out.
func (r *result) write(out string) error {
	if err := os.MkdirAll(out, 0o755); err != nil {
		return err
	}
	data, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(out, "soak.json"), data, 0o644); err != nil {
		return err
	}
	return r.plot(out)
}
