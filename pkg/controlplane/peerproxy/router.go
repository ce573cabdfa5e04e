package peerproxy

import (
	"net/http"
	"net/textproto"
	"strings"

	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apiserver/pkg/endpoints/request"
)

// Decision is what the filter does with a request.
type Decision int

const (
	// Local: serve here (which may be the normal 404).
	Local Decision = iota
	// Proxy: forward to one of Route.Peers.
	Proxy
	// Unavailable: the cluster knows the resource but no live peer serves
	// it; answer 503 rather than a false 404.
	Unavailable
)

func (d Decision) String() string {
	switch d {
	case Proxy:
		return "proxy"
	case Unavailable:
		return "unavailable"
	default:
		return "local"
	}
}

// Route is the router's answer.
type Route struct {
	Decision Decision
	GVR      schema.GroupVersionResource
	// Peers are the live peers serving GVR, in ID order (Proxy only).
	Peers []*Peer
}

// Headers that mark a request as already forwarded by a peer: it is always
// served locally and never proxied again.
const (
	HeaderRerouted    = "X-Kubernetes-APIServer-Rerouted"
	HeaderPeerProxied = "X-Kubernetes-Peer-Proxied"
)

// rerouteKeys are the reroute markers as http.Header stores them. Indexing
// the map with them directly spares Header.Get its canonicalisation, which
// allocates for a name not already canonical: this runs on every request.
var rerouteKeys = [...]string{textproto.CanonicalMIMEHeaderKey(HeaderRerouted), textproto.CanonicalMIMEHeaderKey(HeaderPeerProxied)}

// Rerouted reports whether h marks a request a peer already forwarded.
func Rerouted(h http.Header) bool {
	for _, k := range rerouteKeys {
		if v := h[k]; len(v) > 0 && strings.EqualFold(v[0], "true") {
			return true
		}
	}
	return false
}

// Decide routes a request (SPEC §5). It is a pure function of the request
// info, whether the request was already rerouted, and the snapshot.
func Decide(info *request.RequestInfo, rerouted bool, snap *Snapshot) Route {
	if info == nil || !info.IsResourceRequest {
		return Route{Decision: Local} // 1. not a resource request
	}
	gvr := schema.GroupVersionResource{Group: info.APIGroup, Version: info.APIVersion, Resource: info.Resource}
	if rerouted {
		return Route{Decision: Local, GVR: gvr} // 2. never proxied twice
	}
	served, known := snap.ServesLocally(gvr)
	if served || !known || snap.IsExtension(gvr.GroupVersion()) {
		// 3. served here, a CRD's or aggregated API's; or this server's own
		// API is not read yet (start-up), when nothing is proxied.
		return Route{Decision: Local, GVR: gvr}
	}
	if peers := snap.LivePeers(gvr); len(peers) > 0 {
		return Route{Decision: Proxy, GVR: gvr, Peers: peers} // 4.
	}
	if snap.Known(gvr) {
		return Route{Decision: Unavailable, GVR: gvr} // 5.
	}
	return Route{Decision: Local, GVR: gvr} // 6. the normal 404
}
