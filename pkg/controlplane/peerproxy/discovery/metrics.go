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

package discovery

import (
	"context"

	upstreammetrics "k8s.io/apiserver/pkg/util/peerproxy/metrics"
	"k8s.io/component-base/metrics"
)

const (
	namespace = "apiserver"
	subsystem = "peer_discovery"
)

var (
	discoveryFetches = metrics.NewCounterVec(&metrics.CounterOpts{
		Namespace:      namespace,
		Subsystem:      subsystem,
		Name:           "fetches_total",
		Help:           "Fetches of peers' local discovery documents, by result: ok, not_modified, or the failure's reason (unreachable, timeout, untrusted_certificate, egress_proxy, bad_response, request_failed).",
		StabilityLevel: metrics.ALPHA,
	}, []string{"result"})

	discoveryStaleness = metrics.NewGaugeVec(&metrics.GaugeOpts{
		Namespace:      namespace,
		Subsystem:      subsystem,
		Name:           "staleness_seconds",
		Help:           "Age of the discovery data this server holds for each peer (time since it was last read successfully).",
		StabilityLevel: metrics.ALPHA,
	}, []string{"peer"})
)

// Metrics are this package's metrics, for the legacy registry.
func Metrics() []metrics.Registerable {
	return []metrics.Registerable{discoveryFetches, discoveryStaleness}
}

// countDiscoverySyncError feeds upstream's
// apiserver_peer_discovery_sync_errors_total{type} as well.
func countDiscoverySyncError(reason string) {
	upstreammetrics.IncPeerDiscoverySyncError(context.Background(), reason)
}
