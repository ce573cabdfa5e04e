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
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestParseFlagsNamesWhatIsWrong(t *testing.T) {
	bin := t.TempDir()
	for _, b := range []string{"kube-apiserver", "kube-apiserver-previous", "etcd"} {
		if err := os.WriteFile(filepath.Join(bin, b), nil, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if o, err := parseFlags([]string{"-bin-dir", bin, "-duration", "10m"}); err != nil || o.duration != 10*time.Minute {
		t.Fatalf("valid flags: %+v, %v", o, err)
	}
	for args, want := range map[string]string{
		"-duration 1m":              "shorter than -restart-every",
		"-restart-every 10s":        "at least 30s",
		"-watchers 0":               "at least one per server",
		"-create-every 0s":          "above 0",
		"extra":                     "unexpected arguments",
		"-bin-dir /nonexistent/bin": "make build makes it",
	} {
		a := append([]string{"-bin-dir", bin}, strings.Fields(args)...)
		if _, err := parseFlags(a); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: error %v, want one saying %q", args, err, want)
		}
	}
}

// The soak fails on a figure more than 10% above its baseline, on a false
// 404, and on a watcher that missed, doubled or reordered a Job; the
// summary line says each.
func TestJudgeFailsOnGrowthLossAnd404(t *testing.T) {
	ok := func() *result {
		return &result{Started: time.Now(),
			Baseline: map[string]figures{"a": {HeapMiB: 100, Goroutines: 500, OpenFiles: 40}},
			Final:    map[string]figures{"a": {HeapMiB: 109, Goroutines: 480, OpenFiles: 44}},
			Reads:    map[string]*readTally{"a": {Requests: 10}},
			Watchers: []watcherResult{{Server: "a"}}, Stored: 5}
	}
	r := ok()
	r.judge()
	if !r.Passed || !strings.HasSuffix(r.summary(), ": PASS") || !strings.Contains(r.summary(), "live heap 100.0→109.0 MiB (+9.0%)") {
		t.Fatalf("within bounds: passed %v, problems %v, summary %q", r.Passed, r.Problems, r.summary())
	}
	for name, spoil := range map[string]func(*result){
		"goroutines +20%": func(r *result) { r.Final["a"] = figures{HeapMiB: 100, Goroutines: 600, OpenFiles: 40} },
		"a false 404":     func(r *result) { r.Reads["a"].FalseNotFound = 1 },
		"a lost Job": func(r *result) {
			r.Watchers[0].NotOnceCount, r.Watchers[0].NotOnce = 1, []string{"soak-000003 seen 0 times"}
		},
		"out of order": func(r *result) { r.Watchers[0].OutOfOrder = []string{"soak-000002 at 9 after 12"} },
		"no final":     func(r *result) { r.Final = nil },
	} {
		r := ok()
		spoil(r)
		r.judge()
		if r.Passed || !strings.Contains(r.summary(), "FAIL") {
			t.Errorf("%s: passed %v, summary %q", name, r.Passed, r.summary())
		}
	}
}

// The plots are drawn from the samples, one file per figure.
func TestWriteDrawsThePlots(t *testing.T) {
	r := &result{Started: time.Now(), Restarts: []restartEvent{{Server: "a", At: time.Now().Add(time.Minute)}}}
	for i := range 5 {
		r.Samples = append(r.Samples, sample{Seconds: float64(i * 15), Server: "a", figures: figures{HeapMiB: 90 + float64(i), Goroutines: 500, OpenFiles: 40}})
	}
	out := t.TempDir()
	if err := r.write(out); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"soak.json", "soak-heap.svg", "soak-goroutines.svg", "soak-open-files.svg"} {
		data, err := os.ReadFile(filepath.Join(out, f))
		if err != nil || len(data) == 0 {
			t.Errorf("%s: %d bytes, %v", f, len(data), err)
		}
		if strings.HasSuffix(f, ".svg") && !strings.Contains(string(data), "<svg") {
			t.Errorf("%s is not an SVG", f)
		}
	}
}
