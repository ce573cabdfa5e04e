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
	"io"
	"math"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// target is one way to read the benchmark object: directly from the
// server that serves it, or through the one that proxies.
type target struct {
	name   string
	client *http.Client
	url    string
}

// get reads the object once and fails on anything but a 200.
func (t target) get(ctx context.Context) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, t.url, nil)
	if err != nil {
		return err
	}
	req.Header.Set("Accept", "application/json")
	resp, err := t.client.Do(req)
	if err != nil {
		return err
	}
	_, err = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s: GET %s answered %d", t.name, t.url, resp.StatusCode)
	}
	return nil
}

// concurrent keeps c requests in flight for d and returns how many
// completed and the time they took.
func (t target) concurrent(ctx context.Context, c int, d time.Duration) (int64, time.Duration, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var done atomic.Int64
	var once sync.Once
	var firstErr error
	var wg sync.WaitGroup
	start := time.Now()
	deadline := start.Add(d)
	for range c {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for time.Now().Before(deadline) {
				if err := t.get(ctx); err != nil {
					once.Do(func() { firstErr = err; cancel() })
					return
				}
				done.Add(1)
			}
		}()
	}
	wg.Wait()
	return done.Load(), time.Since(start), firstErr
}

// percentile returns the p-th percentile (0 < p <= 100) of lat by the
// nearest-rank method; lat is sorted in place.
func percentile(lat []time.Duration, p float64) time.Duration {
	if len(lat) == 0 {
		return 0
	}
	slices.Sort(lat)
	rank := int(math.Ceil(p / 100 * float64(len(lat))))
	return lat[max(rank, 1)-1]
}

// pathFigures are one path's measurements.
type pathFigures struct {
	P50, P99 time.Duration
	RPS      float64
	Requests int   // at concurrency 1
	Total    int64 // measured requests, both concurrencies
}

// loadPlan says how much load each measurement gets.
type loadPlan struct {
	Warmup      int
	Requests    int // at concurrency 1, per path
	Concurrency int
	Duration    time.Duration // at Concurrency, per path
	Rounds      int           // the concurrent load alternates between the paths this many times
}

// measure runs the plan against both paths. At concurrency 1 the paths
// take turns request by request, and under concurrent load in rounds, so
// that whatever else the machine and the servers do falls on both alike.
// onProxiedLoad, if set, is called as the first concurrent round on the
// proxied path starts (for a CPU profile of the proxying server).
func measure(ctx context.Context, plan loadPlan, direct, proxied target, onProxiedLoad func(d time.Duration)) (pathFigures, pathFigures, error) {
	paths := []target{direct, proxied}
	lat := [2][]time.Duration{make([]time.Duration, 0, plan.Requests), make([]time.Duration, 0, plan.Requests)}
	for i := range plan.Warmup + plan.Requests {
		for p, t := range paths {
			start := time.Now()
			if err := t.get(ctx); err != nil {
				return pathFigures{}, pathFigures{}, err
			}
			if i >= plan.Warmup {
				lat[p] = append(lat[p], time.Since(start))
			}
		}
	}
	var count [2]int64
	var took [2]time.Duration
	roundLoad := plan.Duration / time.Duration(plan.Rounds)
	for round := range plan.Rounds {
		for p, t := range paths {
			if p == 1 && round == 0 && onProxiedLoad != nil {
				go onProxiedLoad(min(plan.Duration/2, 10*time.Second))
			}
			n, d, err := t.concurrent(ctx, plan.Concurrency, roundLoad)
			if err != nil {
				return pathFigures{}, pathFigures{}, err
			}
			count[p] += n
			took[p] += d
		}
	}
	var figures [2]pathFigures
	for p := range paths {
		figures[p] = pathFigures{
			Requests: len(lat[p]),
			P50:      percentile(lat[p], 50),
			P99:      percentile(lat[p], 99),
			RPS:      float64(count[p]) / took[p].Seconds(),
			Total:    int64(len(lat[p])) + count[p],
		}
	}
	return figures[0], figures[1], nil
}
