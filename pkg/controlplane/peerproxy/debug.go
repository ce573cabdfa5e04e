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

package peerproxy

import (
	"encoding/json"
	"net/http"
	"time"

	apidiscoveryv2 "k8s.io/api/apidiscovery/v2"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/mvp-apiserver/kube-apiserver/pkg/controlplane/peerproxy/discovery"
	"github.com/mvp-apiserver/kube-apiserver/pkg/controlplane/peerproxy/peers"
	"github.com/mvp-apiserver/kube-apiserver/pkg/controlplane/peerproxy/proxy"
)

// DebugPath serves the proxy's view of its peers; the handler chain
// authorizes it like every other /debug path.
const DebugPath = "/debug/peerproxy"

// DebugPeer is one server in the debug document.
type DebugPeer struct {
	ID      string `json:"id"`
	Address string `json:"address,omitempty"`
	Self    bool   `json:"self,omitempty"`
	Live    bool   `json:"live"`
	// Healthy is false while the peer is in backoff after a failure.
	Healthy     bool       `json:"healthy"`
	LastError   string     `json:"lastError,omitempty"`
	LastErrorAt *time.Time `json:"lastErrorAt,omitempty"`
	LastRenew   *time.Time `json:"lastRenew,omitempty"`
	DepartedAt  *time.Time `json:"departedAt,omitempty"`
}

// DebugDocument is what GET /debug/peerproxy answers.
type DebugDocument struct {
	Self    string      `json:"self"`
	BuiltAt time.Time   `json:"builtAt"`
	Peers   []DebugPeer `json:"peers"`
	// Routes maps group/version/resource to the live peers a request for it
	// would be proxied to.
	Routes map[string][]string `json:"routes"`
	// Registered maps group/version/resource to every server that
	// registered it, departed ones within retention included.
	Registered map[string][]string `json:"registered"`
	// Discovery is merged discovery's state; absent without proxying.
	Discovery *DebugDiscovery `json:"discovery,omitempty"`
}

// DebugDiscovery shows merged discovery's freshness.
type DebugDiscovery struct {
	BuiltAt  time.Time             `json:"builtAt"`
	APIsETag string                `json:"apisETag"`
	APIETag  string                `json:"apiETag"`
	Peers    []discovery.PeerState `json:"peers"`
	// PeerOnly maps each group/version only peers serve to the live peers
	// its documents are proxied to.
	PeerOnly map[string][]string `json:"peerOnly"`
}

func newDebugDiscovery(ds *discovery.Snapshot) *DebugDiscovery {
	if ds == nil {
		return nil
	}
	d := &DebugDiscovery{BuiltAt: ds.Built, APIsETag: ds.APIsETag, APIETag: ds.APIETag, Peers: ds.Peers(), PeerOnly: map[string][]string{}}
	for _, g := range append(append([]apidiscoveryv2.APIGroupDiscovery{}, ds.API.Items...), ds.APIs.Items...) {
		for _, v := range g.Versions {
			gv := schema.GroupVersion{Group: g.Name, Version: v.Version}
			if ds.ServesLocally(gv) {
				continue
			}
			ids := []string{}
			for _, p := range ds.PeersFor(gv) {
				ids = append(ids, p.ID)
			}
			d.PeerOnly[gv.String()] = ids
		}
	}
	return d
}

// NewDebugDocument describes snap; h may be nil.
func NewDebugDocument(snap *peers.Snapshot, h *proxy.Health) DebugDocument {
	d := DebugDocument{Self: snap.Self, BuiltAt: snap.Built, Routes: map[string][]string{}, Registered: map[string][]string{}}
	for _, p := range snap.Peers() {
		dp := DebugPeer{ID: p.ID, Address: p.Address, Self: p.ID == snap.Self, Live: p.Live, Healthy: true}
		if h != nil {
			var at time.Time
			dp.Healthy, dp.LastError, at = h.State(p.ID)
			if !at.IsZero() {
				dp.LastErrorAt = &at
			}
		}
		if !p.LastRenew.IsZero() {
			t := p.LastRenew
			dp.LastRenew = &t
		}
		if !p.DepartedAt.IsZero() {
			t := p.DepartedAt
			dp.DepartedAt = &t
		}
		d.Peers = append(d.Peers, dp)
	}
	for _, gvr := range snap.GVRs() {
		key := peers.GVRKey(gvr)
		d.Registered[key] = snap.Servers(gvr)
		ids := []string{}
		for _, p := range snap.LivePeers(gvr) {
			ids = append(ids, p.ID)
		}
		d.Routes[key] = ids
	}
	return d
}

// debugHandler serves the current table and peer health as JSON.
func (m *MixedVersionProxy) debugHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet {
			http.Error(w, "only GET is allowed", http.StatusMethodNotAllowed)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		doc := NewDebugDocument(m.table.Snapshot(), m.health)
		if m.merged != nil {
			doc.Discovery = newDebugDiscovery(m.merged.Snapshot())
		}
		_ = enc.Encode(doc)
	})
}
