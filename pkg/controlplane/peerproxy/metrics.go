package peerproxy

import (
	"context"
	"strconv"
	"sync"

	"k8s.io/apimachinery/pkg/runtime/schema"
	upstreammetrics "k8s.io/apiserver/pkg/util/peerproxy/metrics"

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

	proxyDuration = metrics.NewHistogramVec(&metrics.HistogramOpts{
		Namespace:      namespace,
		Subsystem:      subsystem,
		Name:           "request_duration_seconds",
		Help:           "Time to serve a request through a peer, from routing to the end of the response.",
		Buckets:        []float64{0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60},
		StabilityLevel: metrics.ALPHA,
	}, []string{"group", "version", "resource"})

	peersByState = metrics.NewGaugeVec(&metrics.GaugeOpts{
		Namespace:      namespace,
		Subsystem:      subsystem,
		Name:           "peers",
		Help:           "Other kube-apiservers known to this one, by state: live or not_live (departed, within retention).",
		StabilityLevel: metrics.ALPHA,
	}, []string{"state"})

	discoveryFetches = metrics.NewCounterVec(&metrics.CounterOpts{
		Namespace:      namespace,
		Subsystem:      "peer_discovery",
		Name:           "fetches_total",
		Help:           "Fetches of peers' local discovery documents, by result: ok, not_modified, or the failure's reason (unreachable, timeout, untrusted_certificate, egress_proxy, bad_response, request_failed).",
		StabilityLevel: metrics.ALPHA,
	}, []string{"result"})

	discoveryStaleness = metrics.NewGaugeVec(&metrics.GaugeOpts{
		Namespace:      namespace,
		Subsystem:      "peer_discovery",
		Name:           "staleness_seconds",
		Help:           "Age of the discovery data this server holds for each peer (time since it was last read successfully).",
		StabilityLevel: metrics.ALPHA,
	}, []string{"peer"})

	registerOnce sync.Once
)

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

// countDiscoverySyncError feeds upstream's
// apiserver_peer_discovery_sync_errors_total{type} as well.
func countDiscoverySyncError(reason string) {
	upstreammetrics.IncPeerDiscoverySyncError(context.Background(), reason)
}

// RegisterMetrics registers the proxy's metrics with the legacy registry
// (served on /metrics). Safe to call more than once.
func RegisterMetrics() {
	registerOnce.Do(func() {
		legacyregistry.MustRegister(registrationErrors, entriesCollected, proxyDuration, peersByState, discoveryFetches, discoveryStaleness)
	})
}

// recordPeers sets the peers gauge from a snapshot.
func recordPeers(snap *Snapshot) {
	live, notLive := 0, 0
	for _, p := range snap.Peers() {
		switch {
		case p.ID == snap.Self:
		case p.Live:
			live++
		default:
			notLive++
		}
	}
	peersByState.WithLabelValues("live").Set(float64(live))
	peersByState.WithLabelValues("not_live").Set(float64(notLive))
}
