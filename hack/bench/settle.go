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
	"time"

	"github.com/mvp-apiserver/kube-apiserver/test/e2e/harness"
)

// A server restarted with thousands of CRDs keeps building their OpenAPI
// for a while after it is ready (apiextensions' openapiv3 controller:
// about half of a 650 MB heap at 2,000 CRDs), so a heap read at a fixed
// time after readiness measures how far that build got, not what the
// MVP holds: 20 s after readiness, one restart's heap read 20 MB above
// the other's. The heap is read once it stops moving.
const (
	heapSettleEvery = 5 * time.Second
	heapSettleSpan  = 3       // readings in a row...
	heapSettleBand  = 2 << 20 // ...within this many bytes of each other
	heapSettleMax   = 5 * time.Minute
)

// settled is a live heap once it settled, and how long that took.
type settled struct {
	mb   float64
	took time.Duration
}

// settledHeap reads s's live heap (after a forced collection) every
// heapSettleEvery until heapSettleSpan readings in a row lie within
// heapSettleBand, and returns the last; an error if it never settles
// within heapSettleMax.
func settledHeap(ctx context.Context, s *harness.Server) (settled, error) {
	start := time.Now()
	var last []uint64
	for time.Since(start) < heapSettleMax {
		h, err := harness.LiveHeap(ctx, s.HTTPClient(), s.URL)
		if err != nil {
			return settled{}, err
		}
		if last = append(last, h); len(last) > heapSettleSpan {
			last = last[1:]
		}
		if len(last) == heapSettleSpan && spread(last) <= heapSettleBand {
			return settled{mb: float64(h) / 1e6, took: time.Since(start)}, nil
		}
		if err := pause(ctx, heapSettleEvery); err != nil {
			return settled{}, err
		}
	}
	return settled{}, fmt.Errorf("%s: the live heap still moved after %s (last readings %v bytes)", s.Opts.Name, heapSettleMax, last)
}

// spread is the largest minus the smallest of xs.
func spread(xs []uint64) uint64 {
	lo, hi := xs[0], xs[0]
	for _, x := range xs {
		lo, hi = min(lo, x), max(hi, x)
	}
	return hi - lo
}

// gateHeaps restarts a with the gate on, then off, and reads its settled
// heap each time; with profiles set, it then saves a heap profile too.
func gateHeaps(ctx context.Context, c *harness.Cluster, a *harness.Server, profiles string) (on, off settled, err error) {
	s := a
	for _, gate := range []bool{true, false} {
		if s, err = restartWithGate(ctx, c, s, gate); err != nil {
			return on, off, err
		}
		h, err := settledHeap(ctx, s)
		if err != nil {
			return on, off, err
		}
		name := "-gate-off-heap.pprof"
		if gate {
			on, name = h, "-gate-on-heap.pprof"
		} else {
			off = h
		}
		if profiles != "" {
			saveHeapProfile(ctx, s.HTTPClient(), s.URL, profiles+name)
		}
	}
	return on, off, nil
}
