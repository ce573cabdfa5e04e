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

package peertable

import (
	"k8s.io/component-base/metrics"

	"github.com/mvp-apiserver/kube-apiserver/pkg/controlplane/peerproxy/peers"
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
func recordPeers(snap *peers.Snapshot) {
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
