package peers

import (
	"k8s.io/component-base/metrics"
)

const (
	namespace = "apiserver"
	subsystem = "peer_proxy"
)

var (
	peersByState = metrics.NewGaugeVec(&metrics.GaugeOpts{
		Namespace:      namespace,
		Subsystem:      subsystem,
		Name:           "peers",
		Help:           "Other kube-apiservers known to this one, by state: live or not_live (departed, within retention).",
		StabilityLevel: metrics.ALPHA,
	}, []string{"state"})
)

// Metrics are this package's metrics, for the legacy registry.
func Metrics() []metrics.Registerable {
	return []metrics.Registerable{peersByState}
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
