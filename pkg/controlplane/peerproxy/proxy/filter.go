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
