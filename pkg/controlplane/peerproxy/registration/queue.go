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

package registration

import (
	"context"

	"k8s.io/client-go/util/workqueue"
	"k8s.io/klog/v2"
)

// processQueue runs sync on q's keys until q shuts down. Failures are retried
// with the queue's backoff, counted under operation, and logged as errors
// once they keep failing.
func processQueue(ctx context.Context, q workqueue.TypedRateLimitingInterface[string], operation string, sync func(context.Context, string) error) {
	for {
		key, quit := q.Get()
		if quit {
			return
		}
		if err := sync(ctx, key); err != nil {
			registrationErrors.WithLabelValues(operation).Inc()
			if q.NumRequeues(key) < 5 {
				klog.V(2).InfoS("Retrying StorageVersion update", "operation", operation, "storageVersion", key, "err", err)
			} else {
				klog.ErrorS(err, "StorageVersion update keeps failing", "operation", operation, "storageVersion", key)
			}
			q.AddRateLimited(key)
		} else {
			q.Forget(key)
		}
		q.Done(key)
	}
}
