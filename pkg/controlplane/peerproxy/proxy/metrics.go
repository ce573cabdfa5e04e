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

package proxy

import (
	"context"
	"strconv"

	"k8s.io/apimachinery/pkg/runtime/schema"
	upstreammetrics "k8s.io/apiserver/pkg/util/peerproxy/metrics"
	"k8s.io/component-base/metrics"
)

const (
	namespace = "apiserver"
	subsystem = "peer_proxy"
)

var (
	proxyDuration = metrics.NewHistogramVec(&metrics.HistogramOpts{
		Namespace:      namespace,
		Subsystem:      subsystem,
		Name:           "request_duration_seconds",
		Help:           "Time to serve a request through a peer, from routing to the end of the response.",
		Buckets:        []float64{0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60},
		StabilityLevel: metrics.ALPHA,
	}, []string{"group", "version", "resource"})
)

// Metrics are this package's metrics, for the legacy registry.
func Metrics() []metrics.Registerable {
	return []metrics.Registerable{proxyDuration}
}

// The generic server's /metrics route registers upstream's peer proxy
// counters apiserver_rerouted_request_total and
// apiserver_peer_proxy_errors_total whether or not any proxy runs. We feed
// those same series (their names and labels, so dashboards and alerts keep
// working) instead of registering the names a second time.
func countRerouted(ctx context.Context, code int, gvr schema.GroupVersionResource) {
	upstreammetrics.IncPeerProxiedRequest(ctx, strconv.Itoa(code), gvr.Group, gvr.Version, gvr.Resource)
}

func countError(ctx context.Context, kind string, gvr schema.GroupVersionResource) {
	upstreammetrics.IncPeerProxyError(ctx, kind, gvr.Group, gvr.Version, gvr.Resource)
}
