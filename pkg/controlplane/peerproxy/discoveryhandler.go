package peerproxy

import (
	"crypto/sha512"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
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
	"k8s.io/kube-openapi/pkg/handler3"
)

// newDiscoveryCodecs negotiates aggregated discovery the way upstream's
// handler does (v2 and v2beta1, JSON and protobuf).
func newDiscoveryCodecs() runtime.NegotiatedSerializer {
	s := runtime.NewScheme()
	utilruntime.Must(apidiscoveryv2.AddToScheme(s))
	utilruntime.Must(apidiscoveryv2beta1.AddToScheme(s))
	return serializer.NewCodecFactory(s)
}

// serveDiscovery answers the discovery and OpenAPI v3 requests merged
// discovery changes, and reports whether it did; every other request (and
// every one before the first merge) is left to this server.
func (f *filter) serveDiscovery(w http.ResponseWriter, r *http.Request) bool {
	ds := f.discovery.Snapshot()
	if ds == nil {
		return false
	}
	path := strings.TrimSuffix(r.URL.Path, "/")
	switch {
	case path == rootAPIs || path == rootAPI:
		mt, ok := negotiation.NegotiateMediaTypeOptions(r.Header.Get("Accept"), f.discoveryCodecs.SupportedMediaTypes(), aggregated.DiscoveryEndpointRestrictions)
		if ok && aggregated.IsAggregatedDiscoveryGVK(mt.Convert) {
			// profile=nopeer is what peers ask each other for: this
			// server's own view. v2beta1 clients get the local view too,
			// as upstream serves them.
			if mt.Convert.Version != apidiscoveryv2.SchemeGroupVersion.Version || mt.Profile == "nopeer" {
				return false
			}
			list, etag := ds.APIs, ds.APIsETag
			if path == rootAPI {
				list, etag = ds.API, ds.APIETag
			}
			aggregated.ServeHTTPWithETag(list, etag, apidiscoveryv2.SchemeGroupVersion, f.discoveryCodecs, w, r)
			return true
		}
		if path == rootAPI {
			return false // APIVersions: v1 on every server
		}
		responsewriters.WriteObjectNegotiated(f.serializer, negotiation.DefaultEndpointRestrictions, schema.GroupVersion{}, w, r, http.StatusOK, ds.GroupList, false)
		return true

	case strings.HasPrefix(path, rootAPIs+"/"):
		parts := strings.Split(strings.TrimPrefix(path, rootAPIs+"/"), "/")
		switch len(parts) {
		case 1:
			g := ds.groups[parts[0]]
			if g == nil || sameVersions(ds.localGroups[g.Name], g) {
				return false
			}
			group := apiGroup(g)
			responsewriters.WriteObjectNegotiated(f.serializer, negotiation.DefaultEndpointRestrictions, schema.GroupVersion{}, w, r, http.StatusOK, &group, false)
			return true
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

// servePeerOnly proxies a document of a group/version only peers serve
// (its resource list, its OpenAPI), or answers 503 when the cluster knows
// it but no live peer serves it.
func (f *filter) servePeerOnly(w http.ResponseWriter, r *http.Request, ds *DiscoverySnapshot, gv schema.GroupVersion) bool {
	if ds.ServesLocally(gv) || !ds.Merged(gv) {
		return false
	}
	if peers := ds.PeersFor(gv); len(peers) > 0 {
		f.proxyRoute(w, r, Route{Decision: Proxy, GVR: gv.WithResource(""), Peers: peers})
		return true
	}
	countError(r.Context(), errNoLivePeer, gv.WithResource(""))
	countRerouted(r.Context(), http.StatusServiceUnavailable, gv.WithResource(""))
	f.writeStatus(w, r, fmt.Sprintf("%s is served in this cluster, but by no live kube-apiserver; retry later", gv), retryAfterNoPeer)
	return true
}

// serveOpenAPIRoot answers the OpenAPI v3 root with this server's paths
// plus those of group/versions only peers serve, so clients such as
// `kubectl explain` find every kind through any server.
func (f *filter) serveOpenAPIRoot(w http.ResponseWriter, r *http.Request, ds *DiscoverySnapshot) bool {
	if len(ds.openAPI) == 0 {
		return false
	}
	resp, err := getDoc(r.Context(), f.discovery.localGet, openAPIRoot, "application/json", "")
	if err != nil {
		return false
	}
	body, err := readBody(resp)
	if err != nil || resp.StatusCode != http.StatusOK {
		return false // OpenAPI v3 off here, or failing: this server's answer
	}
	var root handler3.OpenAPIV3Discovery
	if err := json.Unmarshal(body, &root); err != nil {
		return false
	}
	for p, u := range ds.openAPI {
		if _, ok := root.Paths[p]; !ok {
			root.Paths[p] = handler3.OpenAPIV3DiscoveryGroupVersion{ServerRelativeURL: u}
		}
	}
	merged, err := json.Marshal(root)
	if err != nil {
		return false
	}
	etag := strconv.Quote(fmt.Sprintf("%X", sha512.Sum512(merged)))
	w.Header().Set("ETag", etag)
	w.Header().Set("Vary", "Accept")
	if r.Header.Get("If-None-Match") == etag {
		w.WriteHeader(http.StatusNotModified)
		return true
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	if r.Method != http.MethodHead {
		_, _ = w.Write(merged)
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
