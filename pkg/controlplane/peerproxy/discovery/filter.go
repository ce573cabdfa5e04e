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

package discovery

import (
	"net/http"
	"strings"

	apidiscoveryv2 "k8s.io/api/apidiscovery/v2"
	apidiscoveryv2beta1 "k8s.io/api/apidiscovery/v2beta1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/runtime/serializer"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	"k8s.io/apiserver/pkg/endpoints/discovery/aggregated"
	"k8s.io/apiserver/pkg/endpoints/handlers/negotiation"
	"k8s.io/apiserver/pkg/endpoints/handlers/responsewriters"
	"k8s.io/apiserver/pkg/endpoints/request"

	"github.com/mvp-apiserver/kube-apiserver/pkg/controlplane/peerproxy/peerclient"
	"github.com/mvp-apiserver/kube-apiserver/pkg/controlplane/peerproxy/peers"
)

// Forwarder relays a document request to one of the live peers that serve
// its group/version, or answers 503 when none does (the proxy's Forwarder).
type Forwarder interface {
	Forward(w http.ResponseWriter, r *http.Request, gvr schema.GroupVersionResource, candidates []*peers.Peer)
	Unavailable(w http.ResponseWriter, r *http.Request, gvr schema.GroupVersionResource, registeredBy []string)
}

// mergedDiscoveryFilter answers the discovery and OpenAPI v3 documents
// merged discovery changes from the current Snapshot, and forwards the
// documents of group/versions only peers serve. Everything else, and
// everything before the first merge, goes to next.
type mergedDiscoveryFilter struct {
	next       http.Handler
	merged     *Merged
	forward    Forwarder
	codecs     runtime.NegotiatedSerializer // aggregated discovery
	serializer runtime.NegotiatedSerializer // everything else
}

// WithMergedDiscovery wraps next with merged discovery; serializer writes
// the unaggregated documents. It must sit where RequestInfo is in the
// request context.
func WithMergedDiscovery(next http.Handler, merged *Merged, fw Forwarder, serializer runtime.NegotiatedSerializer) http.Handler {
	return &mergedDiscoveryFilter{next: next, merged: merged, forward: fw, codecs: newDiscoveryCodecs(), serializer: serializer}
}

// newDiscoveryCodecs negotiates aggregated discovery the way upstream's
// handler does (v2 and v2beta1, JSON and protobuf).
func newDiscoveryCodecs() runtime.NegotiatedSerializer {
	s := runtime.NewScheme()
	utilruntime.Must(apidiscoveryv2.AddToScheme(s))
	utilruntime.Must(apidiscoveryv2beta1.AddToScheme(s))
	return serializer.NewCodecFactory(s)
}

func (f *mergedDiscoveryFilter) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	info, _ := request.RequestInfoFrom(r.Context())
	if (info != nil && info.IsResourceRequest) || (r.Method != http.MethodGet && r.Method != http.MethodHead) ||
		peerclient.Rerouted(r.Header) || !f.serve(w, r) {
		f.next.ServeHTTP(w, r)
	}
}

// serve answers r if merged discovery changes its answer, and reports
// whether it did.
func (f *mergedDiscoveryFilter) serve(w http.ResponseWriter, r *http.Request) bool {
	ds := f.merged.Snapshot()
	if ds == nil {
		return false
	}
	path := strings.TrimSuffix(r.URL.Path, "/")
	switch {
	case path == rootAPIs || path == rootAPI:
		return f.serveRoot(w, r, ds, path)
	case strings.HasPrefix(path, rootAPIs+"/"):
		parts := strings.Split(strings.TrimPrefix(path, rootAPIs+"/"), "/")
		switch len(parts) {
		case 1:
			return f.serveGroup(w, r, ds, parts[0])
		case 2:
			return f.servePeerOnly(w, r, ds, schema.GroupVersion{Group: parts[0], Version: parts[1]})
		}
	case path == openAPIRoot:
		return f.serveOpenAPIRoot(w, r, ds)
	case strings.HasPrefix(path, openAPIRoot+rootAPIs+"/"):
		parts := strings.Split(strings.TrimPrefix(path, openAPIRoot+rootAPIs+"/"), "/")
		if len(parts) == 2 {
			return f.servePeerOnly(w, r, ds, schema.GroupVersion{Group: parts[0], Version: parts[1]})
		}
	}
	return false
}

// serveRoot answers /api and /apis: merged aggregated discovery v2, or the
// merged unaggregated group list.
func (f *mergedDiscoveryFilter) serveRoot(w http.ResponseWriter, r *http.Request, ds *Snapshot, path string) bool {
	mt, ok := negotiation.NegotiateMediaTypeOptions(r.Header.Get("Accept"), f.codecs.SupportedMediaTypes(), aggregated.DiscoveryEndpointRestrictions)
	if ok && aggregated.IsAggregatedDiscoveryGVK(mt.Convert) {
		// profile=nopeer is what peers ask each other for: this server's
		// own view. v2beta1 (negotiated only while upstream's
		// AggregatedDiscoveryRemoveBetaType gate is off) gets the local
		// view too.
		if mt.Convert.Version != apidiscoveryv2.SchemeGroupVersion.Version || mt.Profile == "nopeer" {
			return false
		}
		list, etag := ds.APIs, ds.APIsETag
		if path == rootAPI {
			list, etag = ds.API, ds.APIETag
		}
		aggregated.ServeHTTPWithETag(list, etag, apidiscoveryv2.SchemeGroupVersion, f.codecs, w, r)
		return true
	}
	if path == rootAPI {
		return false // APIVersions: v1 on every server
	}
	responsewriters.WriteObjectNegotiated(f.serializer, negotiation.DefaultEndpointRestrictions, schema.GroupVersion{}, w, r, http.StatusOK, ds.GroupList, false)
	return true
}

// serveGroup answers /apis/<group> when peers add versions to it.
func (f *mergedDiscoveryFilter) serveGroup(w http.ResponseWriter, r *http.Request, ds *Snapshot, name string) bool {
	g := ds.groups[name]
	if g == nil || sameVersions(ds.localGroups[g.Name], g) {
		return false
	}
	group := apiGroup(g)
	responsewriters.WriteObjectNegotiated(f.serializer, negotiation.DefaultEndpointRestrictions, schema.GroupVersion{}, w, r, http.StatusOK, &group, false)
	return true
}

// servePeerOnly forwards a document of a group/version only peers serve
// (its resource list, its OpenAPI), or answers 503 when the cluster knows
// it but no live peer serves it.
func (f *mergedDiscoveryFilter) servePeerOnly(w http.ResponseWriter, r *http.Request, ds *Snapshot, gv schema.GroupVersion) bool {
	if ds.ServesLocally(gv) || !ds.Merged(gv) {
		return false
	}
	if candidates := ds.PeersFor(gv); len(candidates) > 0 {
		f.forward.Forward(w, r, gv.WithResource(""), candidates)
		return true
	}
	f.forward.Unavailable(w, r, gv.WithResource(""), nil)
	return true
}

// serveOpenAPIRoot answers the OpenAPI v3 root with this server's paths
// plus those of group/versions only peers serve, so clients such as
// `kubectl explain` find every kind through any server.
func (f *mergedDiscoveryFilter) serveOpenAPIRoot(w http.ResponseWriter, r *http.Request, ds *Snapshot) bool {
	if ds.OpenAPIRoot == nil {
		return false
	}
	w.Header().Set("ETag", ds.OpenAPIRootETag)
	w.Header().Set("Vary", "Accept")
	if r.Header.Get("If-None-Match") == ds.OpenAPIRootETag {
		w.WriteHeader(http.StatusNotModified)
		return true
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	if r.Method != http.MethodHead {
		_, _ = w.Write(ds.OpenAPIRoot)
	}
	return true
}

// sameVersions reports whether this server serves exactly the merged
// group's versions, so its own /apis/<group> answer is the merged one.
func sameVersions(local []string, g *apidiscoveryv2.APIGroupDiscovery) bool {
	if len(local) != len(g.Versions) {
		return false
	}
	for i, v := range g.Versions {
		if local[i] != v.Version {
			return false
		}
	}
	return true
}
