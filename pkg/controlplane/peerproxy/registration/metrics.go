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

// failedOperation counts a controller's failed sync under operation.
func failedOperation[K comparable](operation string) func(K, error) {
	return func(K, error) { registrationErrors.WithLabelValues(operation).Inc() }
}
