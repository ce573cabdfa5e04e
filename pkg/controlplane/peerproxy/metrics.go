package peerproxy

import (
	"sync"

	"k8s.io/component-base/metrics"
	"k8s.io/component-base/metrics/legacyregistry"
)

const (
	namespace = "apiserver"
	subsystem = "peer_proxy"
)

var (
	registrationErrors = metrics.NewCounterVec(&metrics.CounterOpts{
		Namespace:      namespace,
		Subsystem:      subsystem,
		Name:           "registration_errors_total",
		Help:           "Failures of the storage version registration, by operation: discover (computing this server's entries), write (publishing them), collect (removing departed servers' entries).",
		StabilityLevel: metrics.ALPHA,
	}, []string{"operation"})

	entriesCollected = metrics.NewCounter(&metrics.CounterOpts{
		Namespace:      namespace,
		Subsystem:      subsystem,
		Name:           "storage_version_entries_collected_total",
		Help:           "Departed servers' StorageVersion entries removed after the retention window.",
		StabilityLevel: metrics.ALPHA,
	})

	registerOnce sync.Once
)

// RegisterMetrics registers the proxy's metrics with the legacy registry
// (served on /metrics). Safe to call more than once.
func RegisterMetrics() {
	registerOnce.Do(func() {
		legacyregistry.MustRegister(registrationErrors, entriesCollected)
	})
}
