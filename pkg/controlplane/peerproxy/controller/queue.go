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

// Package controller is the loop every controller of the proxy runs, in
// the sample-controller's shape: informers or timers add keys to a queue
// of one kind of key; workers take one key at a time and call an
// idempotent sync; a failed key comes back with the queue's backoff.
package controller

import (
	"context"
	"time"

	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/util/workqueue"
	"k8s.io/klog/v2"
	"k8s.io/utils/clock"
)

// Queue is a rate-limited queue of one kind of key.
type Queue[K comparable] = workqueue.TypedRateLimitingInterface[K]

// NewQueue is a queue named name (its workqueue metrics' label) with the
// controllers' default backoff.
func NewQueue[K comparable](name string) Queue[K] {
	return workqueue.NewTypedRateLimitingQueueWithConfig(workqueue.DefaultTypedControllerRateLimiter[K](),
		workqueue.TypedRateLimitingQueueConfig[K]{Name: name})
}

// NewQueueWithClock is NewQueue whose delays (AddAfter, backoff) run on clk.
func NewQueueWithClock[K comparable](name string, clk clock.WithTicker) Queue[K] {
	return workqueue.NewTypedRateLimitingQueueWithConfig(workqueue.DefaultTypedControllerRateLimiter[K](),
		workqueue.TypedRateLimitingQueueConfig[K]{Name: name, Clock: clk})
}

// Sync brings the state one key names to what it should be. It must be
// idempotent: a key may come again at any time.
type Sync[K comparable] func(ctx context.Context, key K) error

// WithName is ctx with its logger named for one controller.
func WithName(ctx context.Context, name string) context.Context {
	return klog.NewContext(ctx, klog.LoggerWithName(klog.FromContext(ctx), name))
}

// Run starts workers that sync q's keys until ctx ends, and shuts q down
// then. It does not block. failed, if not nil, is told of every failure
// (a metric, say) before the key is retried.
func Run[K comparable](ctx context.Context, q Queue[K], workers int, sync Sync[K], failed func(K, error)) {
	go func() {
		<-ctx.Done()
		q.ShutDown()
	}()
	for range workers {
		go wait.UntilWithContext(ctx, func(ctx context.Context) {
			defer utilruntime.HandleCrashWithContext(ctx)
			for processNext(ctx, q, sync, failed) {
			}
		}, time.Second)
	}
}

// maxQuietRetries: a key failing this many times in a row is logged as an
// error, not at verbosity 2.
const maxQuietRetries = 5

// processNext syncs one key; false once q has shut down.
func processNext[K comparable](ctx context.Context, q Queue[K], sync Sync[K], failed func(K, error)) bool {
	key, quit := q.Get()
	if quit {
		return false
	}
	defer q.Done(key)
	err := sync(ctx, key)
	if err == nil {
		q.Forget(key)
		return true
	}
	if failed != nil {
		failed(key, err)
	}
	logger := klog.FromContext(ctx)
	if q.NumRequeues(key) < maxQuietRetries {
		logger.V(2).Info("Retrying", "key", key, "err", err)
	} else {
		logger.Error(err, "Keeps failing; retrying with backoff", "key", key)
	}
	q.AddRateLimited(key)
	return true
}
