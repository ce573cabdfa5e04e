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

// sequential issues n requests one after another and returns each latency.
func (t target) sequential(ctx context.Context, n int) ([]time.Duration, error) {
	lat := make([]time.Duration, 0, n)
	for range n {
		start := time.Now()
		if err := t.get(ctx); err != nil {
			return nil, err
		}
		lat = append(lat, time.Since(start))
	}
	return lat, nil
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
	Rounds      int           // the paths alternate this many times
}

// measure runs the plan against both paths, alternating them in rounds so
// that drift on the machine falls on both alike. onProxiedLoad, if set, is
// called as the first concurrent round on the proxied path starts (for a
// CPU profile of the proxying server).
func measure(ctx context.Context, plan loadPlan, direct, proxied target, onProxiedLoad func(d time.Duration)) (pathFigures, pathFigures, error) {
	paths := []target{direct, proxied}
	for _, t := range paths {
		if _, err := t.sequential(ctx, plan.Warmup); err != nil {
			return pathFigures{}, pathFigures{}, err
		}
	}
	lat := make([][]time.Duration, 2)
	count := make([]int64, 2)
	took := make([]time.Duration, 2)
	perRound := max(plan.Requests/plan.Rounds, 1)
	roundLoad := plan.Duration / time.Duration(plan.Rounds)
	for round := range plan.Rounds {
		for i, t := range paths {
			l, err := t.sequential(ctx, perRound)
			if err != nil {
				return pathFigures{}, pathFigures{}, err
			}
			lat[i] = append(lat[i], l...)
		}
		for i, t := range paths {
			if i == 1 && round == 0 && onProxiedLoad != nil {
				go onProxiedLoad(roundLoad)
			}
			n, d, err := t.concurrent(ctx, plan.Concurrency, roundLoad)
			if err != nil {
				return pathFigures{}, pathFigures{}, err
			}
			count[i] += n
			took[i] += d
		}
	}
	figures := make([]pathFigures, 2)
	for i := range paths {
		figures[i] = pathFigures{
			Requests: len(lat[i]),
			P50:      percentile(lat[i], 50),
			P99:      percentile(lat[i], 99),
			RPS:      float64(count[i]) / took[i].Seconds(),
			Total:    int64(len(lat[i])) + count[i],
		}
	}
	return figures[0], figures[1], nil
}
