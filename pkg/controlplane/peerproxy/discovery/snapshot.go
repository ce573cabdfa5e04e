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
	"crypto/sha512"
	"encoding/json"
	"fmt"
	"sort"
	"strconv"
	"time"

	apidiscoveryv2 "k8s.io/api/apidiscovery/v2"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	"k8s.io/kube-openapi/pkg/handler3"

	"github.com/mvp-apiserver/kube-apiserver/pkg/controlplane/peerproxy/peers"
)

// Snapshot is an immutable view of the cluster's merged
// discovery, every document built when its inputs changed. Readers never
// lock.
type Snapshot struct {
	Built time.Time
	// API and APIs are the merged /api and /apis documents; the ETags
	// change only when their content does.
	API, APIs         *apidiscoveryv2.APIGroupDiscoveryList
	APIETag, APIsETag string
	// GroupList is the unaggregated /apis document.
	GroupList *metav1.APIGroupList
	// OpenAPIRoot is the OpenAPI v3 root with this server's paths and those
	// of group/versions only peers serve; nil when there are none of the
	// latter, or OpenAPI v3 is off here.
	OpenAPIRoot     []byte
	OpenAPIRootETag string

	groups map[string]*apidiscoveryv2.APIGroupDiscovery // merged /apis groups by name
	// local: the group/versions this server's own documents list.
	local map[schema.GroupVersion]bool
	// localGroups: the versions of each group this server serves.
	localGroups map[string][]string
	// peersFor: group/versions this server does not serve, with the live
	// peers that do, in ID order.
	peersFor map[schema.GroupVersion][]*peers.Peer
	// peerOnly counts the group/versions only peers serve, live or not.
	peerOnly int
	peers    []PeerState
}

// ServesLocally reports whether this server itself serves gv.
func (s *Snapshot) ServesLocally(gv schema.GroupVersion) bool { return s.local[gv] }

// Merged reports whether the merged discovery lists gv.
func (s *Snapshot) Merged(gv schema.GroupVersion) bool {
	g := s.groups[gv.Group]
	if gv.Group == "" {
		for i := range s.API.Items {
			if s.API.Items[i].Name == "" {
				g = &s.API.Items[i]
			}
		}
	}
	if g == nil {
		return false
	}
	for _, v := range g.Versions {
		if v.Version == gv.Version {
			return true
		}
	}
	return false
}

// PeersFor returns the live peers serving gv when this server does not.
func (s *Snapshot) PeersFor(gv schema.GroupVersion) []*peers.Peer { return s.peersFor[gv] }

// Peers describes each peer's discovery data, in ID order.
func (s *Snapshot) Peers() []PeerState { return s.peers }

// PeerState is one peer's discovery freshness (debug document).
type PeerState struct {
	ID          string     `json:"id"`
	Fresh       bool       `json:"fresh"`
	HasData     bool       `json:"hasData"`
	FetchedAt   *time.Time `json:"fetchedAt,omitempty"`
	AgeSeconds  float64    `json:"ageSeconds,omitempty"`
	Groups      int        `json:"groups"`
	LastError   string     `json:"lastError,omitempty"`
	LastErrorAt *time.Time `json:"lastErrorAt,omitempty"`
}

// PeerDocs is what the controller knows of one peer's discovery.
type PeerDocs struct {
	docs        *serverDocs // nil until a fetch succeeded
	lastError   string
	lastErrorAt time.Time
}

// Inputs is everything merged discovery is built from.
type Inputs struct {
	Self string
	Now  time.Time
	// Table gives the peers' liveness and addresses.
	Table *peers.Snapshot
	// Local is this server's own documents; Peers the peers' by ID.
	Local *serverDocs
	Peers map[string]PeerDocs
	Rules MergeRules
}

// Build merges the inputs' documents. It is a pure function of
// them. Discovered lists, per peer, the resources it contributes, for the
// peer table's router.
func Build(in Inputs) (out *Snapshot, discovered map[string][]schema.GroupVersionResource) {
	ids := make([]string, 0, len(in.Peers))
	for id, pd := range in.Peers {
		if pd.docs != nil {
			ids = append(ids, id)
		}
	}
	sort.Strings(ids)
	self := Source{Server: in.Self, Local: true, Fresh: true, FetchedAt: in.Local.fetchedAt}
	apiSrcs := []Source{withGroups(self, in.Local.api.groups)}
	apisSrcs := []Source{withGroups(self, in.Local.apis.groups)}
	sources := make(map[string]Source, len(ids))
	for _, id := range ids {
		pd := in.Peers[id]
		p, _ := in.Table.Peer(id)
		src := Source{Server: id, Fresh: fresh(p, pd), FetchedAt: pd.docs.fetchedAt}
		sources[id] = src
		apiSrcs = append(apiSrcs, withGroups(src, pd.docs.api.groups))
		apisSrcs = append(apisSrcs, withGroups(src, pd.docs.apis.groups))
	}

	out = &Snapshot{Built: in.Now, groups: map[string]*apidiscoveryv2.APIGroupDiscovery{}}
	out.API, out.APIETag = discoveryList(Merge(apiSrcs, in.Rules))
	out.APIs, out.APIsETag = discoveryList(Merge(apisSrcs, in.Rules))
	out.GroupList = APIGroupList(out.APIs.Items)
	for i := range out.APIs.Items {
		out.groups[out.APIs.Items[i].Name] = &out.APIs.Items[i]
	}
	out.local, out.localGroups = localVersions(in.Local)
	discovered = out.routePeerOnly(in, ids, sources)
	out.peers = debugPeers(in)
	return out, discovered
}

// fresh: the peer is live and its last fetch succeeded.
func fresh(p peers.Peer, pd PeerDocs) bool { return p.Live && pd.lastError == "" }

// localVersions lists the group/versions of this server's documents.
func localVersions(docs *serverDocs) (map[schema.GroupVersion]bool, map[string][]string) {
	local, groups := map[schema.GroupVersion]bool{}, map[string][]string{}
	eachVersion(docs, func(gv schema.GroupVersion, _ *apidiscoveryv2.APIVersionDiscovery) {
		local[gv] = true
		groups[gv.Group] = append(groups[gv.Group], gv.Version)
	})
	return local, groups
}

// routePeerOnly records, for each group/version only peers serve, the
// live peers its documents are proxied to and its OpenAPI URL (the first
// fresh peer's, IDs being sorted, else the first stale one's), and builds
// the merged OpenAPI root from them.
func (s *Snapshot) routePeerOnly(in Inputs, ids []string, sources map[string]Source) map[string][]schema.GroupVersionResource {
	s.peersFor = map[schema.GroupVersion][]*peers.Peer{}
	discovered := map[string][]schema.GroupVersionResource{}
	peerOnly, fromFresh, counted := map[string]string{}, map[string]bool{}, map[schema.GroupVersion]bool{}
	for _, id := range ids {
		docs, src := in.Peers[id].docs, sources[id]
		p, _ := in.Table.Peer(id)
		gvs, gvrs := contributed(&src, in.Rules, docs)
		discovered[id] = gvrs
		for _, gv := range gvs {
			if s.local[gv] {
				continue
			}
			if !counted[gv] {
				counted[gv] = true
				s.peerOnly++
			}
			if p.Reachable(in.Self) {
				s.peersFor[gv] = append(s.peersFor[gv], &p)
			}
			path := openAPIPath(gv)
			if u, ok := docs.openAPI[path]; ok && !fromFresh[path] {
				if _, had := peerOnly[path]; !had || src.Fresh {
					peerOnly[path], fromFresh[path] = u, src.Fresh
				}
			}
		}
	}
	s.OpenAPIRoot, s.OpenAPIRootETag = mergedOpenAPIRoot(in.Local.openAPI, peerOnly)
	return discovered
}

// mergedOpenAPIRoot is this server's OpenAPI v3 root plus the paths only
// peers serve, with its ETag; nil when there is nothing to add or
// OpenAPI v3 is off here.
func mergedOpenAPIRoot(local, peerOnly map[string]string) ([]byte, string) {
	if local == nil || len(peerOnly) == 0 {
		return nil, ""
	}
	root := handler3.OpenAPIV3Discovery{Paths: make(map[string]handler3.OpenAPIV3DiscoveryGroupVersion, len(local)+len(peerOnly))}
	for p, u := range peerOnly {
		root.Paths[p] = handler3.OpenAPIV3DiscoveryGroupVersion{ServerRelativeURL: u}
	}
	for p, u := range local {
		root.Paths[p] = handler3.OpenAPIV3DiscoveryGroupVersion{ServerRelativeURL: u}
	}
	b, err := json.Marshal(root)
	if err != nil {
		utilruntime.HandleError(fmt.Errorf("encoding the merged OpenAPI v3 root: %w", err))
		return nil, ""
	}
	return b, strconv.Quote(fmt.Sprintf("%X", sha512.Sum512(b)))
}

// debugPeers describes each peer's data for /debug/peerproxy, in ID order.
func debugPeers(in Inputs) []PeerState {
	var out []PeerState
	for id, pd := range in.Peers {
		p, _ := in.Table.Peer(id)
		dp := PeerState{ID: id, LastError: pd.lastError}
		if pd.lastError != "" {
			at := pd.lastErrorAt
			dp.LastErrorAt = &at
		}
		if pd.docs != nil {
			t := pd.docs.fetchedAt
			dp.Fresh, dp.HasData, dp.Groups = fresh(p, pd), true, len(pd.docs.api.groups)+len(pd.docs.apis.groups)
			dp.FetchedAt, dp.AgeSeconds = &t, in.Now.Sub(t).Seconds()
		} else if pd.lastError == "" {
			continue // not asked yet
		}
		out = append(out, dp)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

func withGroups(src Source, groups []apidiscoveryv2.APIGroupDiscovery) Source {
	src.Groups = groups
	return src
}

// eachVersion calls f with every group/version of a server's /api and
// /apis documents.
func eachVersion(docs *serverDocs, f func(gv schema.GroupVersion, v *apidiscoveryv2.APIVersionDiscovery)) {
	anyVersion(docs, func(gv schema.GroupVersion, v *apidiscoveryv2.APIVersionDiscovery) bool {
		f(gv, v)
		return false
	})
}

// anyVersion calls f with the group/versions of a server's /api and /apis
// documents in turn until f returns true, and reports whether it did.
func anyVersion(docs *serverDocs, f func(gv schema.GroupVersion, v *apidiscoveryv2.APIVersionDiscovery) bool) bool {
	for _, root := range [][]apidiscoveryv2.APIGroupDiscovery{docs.api.groups, docs.apis.groups} {
		for _, g := range root {
			for i := range g.Versions {
				if f(schema.GroupVersion{Group: g.Name, Version: g.Versions[i].Version}, &g.Versions[i]) {
					return true
				}
			}
		}
	}
	return false
}

// contributed lists the group/versions a peer's documents contribute to
// the merge, and their resources (for the router).
func contributed(src *Source, rules MergeRules, docs *serverDocs) (gvs []schema.GroupVersion, gvrs []schema.GroupVersionResource) {
	eachVersion(docs, func(gv schema.GroupVersion, v *apidiscoveryv2.APIVersionDiscovery) {
		if rules.skip(src, gv) {
			return
		}
		gvs = append(gvs, gv)
		for _, r := range v.Resources {
			gvrs = append(gvrs, gv.WithResource(r.Resource))
		}
	})
	return gvs, gvrs
}

// openAPIPath is a group/version's path in the OpenAPI v3 root document.
func openAPIPath(gv schema.GroupVersion) string {
	if gv.Group == "" {
		return "api/" + gv.Version
	}
	return "apis/" + gv.Group + "/" + gv.Version
}

// discoveryList wraps merged groups as a document and computes its ETag
// from the content alone, the way upstream computes its own.
func discoveryList(groups []apidiscoveryv2.APIGroupDiscovery) (*apidiscoveryv2.APIGroupDiscoveryList, string) {
	list := &apidiscoveryv2.APIGroupDiscoveryList{
		TypeMeta: metav1.TypeMeta{Kind: "APIGroupDiscoveryList", APIVersion: apidiscoveryv2.SchemeGroupVersion.String()},
		Items:    groups,
	}
	b, err := json.Marshal(groups)
	if err != nil {
		utilruntime.HandleError(fmt.Errorf("hashing merged discovery: %w", err))
	}
	return list, fmt.Sprintf("%X", sha512.Sum512(b))
}
