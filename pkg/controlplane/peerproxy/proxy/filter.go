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
	"net/http"

	"k8s.io/apiserver/pkg/endpoints/request"

	"github.com/mvp-apiserver/kube-apiserver/pkg/controlplane/peerproxy/peerclient"
	"github.com/mvp-apiserver/kube-apiserver/pkg/controlplane/peerproxy/peers"
)

// Table is the peer table as the filter reads it: its current snapshot,
// which never blocks.
type Table interface {
	Snapshot() *peers.Snapshot
}

// WithPeerProxy wraps next with the proxy's routing (Decide), done by fw:
// serve here, proxy to a peer, or 503. It must sit where RequestInfo and
// the authenticated user are in the request context.
func WithPeerProxy(next http.Handler, table Table, fw *Forwarder) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		info, _ := request.RequestInfoFrom(r.Context())
		snap := table.Snapshot()
		route := Decide(info, peerclient.Rerouted(r.Header), snap)
		switch route.Decision {
		case Local:
			next.ServeHTTP(w, r)
		case Unavailable:
			fw.Unavailable(w, r, route.GVR, snap.Servers(route.GVR))
		case Proxy:
			fw.Forward(w, r, route.GVR, route.Peers)
		}
	})
}
