package registration

import (
	"k8s.io/component-base/metrics"
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
)

// Metrics are this package's metrics, for the legacy registry.
func Metrics() []metrics.Registerable {
	return []metrics.Registerable{registrationErrors, entriesCollected}
}
