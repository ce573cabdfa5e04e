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
