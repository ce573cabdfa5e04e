package peerproxy

import (
	"net/http"

	"k8s.io/apiserver/pkg/endpoints/request"
)

// peerProxyFilter routes each request: serve here, proxy to a peer, or 503.
type peerProxyFilter struct {
	next    http.Handler
	table   *PeerTable
	forward *forwarder
}

// WithPeerProxy wraps next with the proxy's routing (router.go), done by
// the forwarder (forward.go). It must sit where RequestInfo and the
// authenticated user are in the request context.
func (m *MixedVersionProxy) WithPeerProxy(next http.Handler) http.Handler {
	if m.forward == nil {
		return next
	}
	return &peerProxyFilter{next: next, table: m.table, forward: m.forward}
}

func (f *peerProxyFilter) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	info, _ := request.RequestInfoFrom(r.Context())
	snap := f.table.Snapshot()
	route := Decide(info, Rerouted(r.Header), snap)
	switch route.Decision {
	case Local:
		f.next.ServeHTTP(w, r)
	case Unavailable:
		f.forward.unavailable(w, r, route.GVR, snap.Servers(route.GVR))
	case Proxy:
		f.forward.forward(w, r, route)
	}
}
