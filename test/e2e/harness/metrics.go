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

package harness

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
)

// Fetch GETs url and returns the body of a 200 answer; any other answer
// is an error naming the URL.
func Fetch(ctx context.Context, client *http.Client, url string) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	resp, err := client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s answered %d: %.200s", url, resp.StatusCode, body)
	}
	return body, nil
}

// LiveHeap reads a server's live heap in bytes: /debug/pprof/heap with
// gc=1 runs a collection first, and debug=1 ends with runtime.MemStats as
// text. The server needs --profiling (the harness sets it).
func LiveHeap(ctx context.Context, client *http.Client, server string) (uint64, error) {
	body, err := Fetch(ctx, client, server+"/debug/pprof/heap?gc=1&debug=1")
	if err != nil {
		return 0, err
	}
	return ParseHeapAlloc(bytes.NewReader(body))
}

// ParseHeapAlloc finds "# HeapAlloc = N" in a debug=1 heap profile.
func ParseHeapAlloc(r io.Reader) (uint64, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64*1024), 4*1024*1024)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "# HeapAlloc = "); ok {
			return strconv.ParseUint(strings.TrimSpace(v), 10, 64)
		}
	}
	if err := sc.Err(); err != nil {
		return 0, err
	}
	return 0, errors.New("no HeapAlloc line in the heap profile")
}

// ParseMetric finds the value of an unlabelled metric (go_goroutines,
// process_open_fds) in Prometheus text.
func ParseMetric(text []byte, name string) (float64, error) {
	v, samples, err := MetricSum(text, name)
	if err == nil && samples == 0 {
		err = fmt.Errorf("no sample of %s", name)
	}
	return v, err
}

// MetricSum adds up the samples of metric name in Prometheus text whose
// line holds every one of labels (`code="503"`), and says how many there
// were: a counter never incremented has none, which sums to 0.
func MetricSum(text []byte, name string, labels ...string) (sum float64, samples int, err error) {
	for line := range strings.SplitSeq(string(text), "\n") {
		if !strings.HasPrefix(line, name+" ") && !strings.HasPrefix(line, name+"{") {
			continue
		}
		matched := true
		for _, l := range labels {
			matched = matched && strings.Contains(line, l)
		}
		if !matched {
			continue
		}
		v, err := strconv.ParseFloat(strings.TrimSpace(line[strings.LastIndexByte(line, ' ')+1:]), 64)
		if err != nil {
			return 0, 0, fmt.Errorf("metric line %q: %w", line, err)
		}
		sum += v
		samples++
	}
	return sum, samples, nil
}
