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
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apiserver/pkg/endpoints/request"

	"github.com/mvp-apiserver/kube-apiserver/pkg/controlplane/peerproxy/peers"
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
	Peers []*peers.Peer
}

// Decide routes a request (docs/proxy.md, "Routing"). It is a pure function of the request
// info, whether the request was already rerouted, and the snapshot.
func Decide(info *request.RequestInfo, rerouted bool, snap *peers.Snapshot) Route {
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
