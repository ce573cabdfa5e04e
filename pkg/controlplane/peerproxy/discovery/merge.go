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
	"sort"
	"time"

	apidiscoveryv2 "k8s.io/api/apidiscovery/v2"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/version"
)

// removedExtensionLag is how long after a CRD or aggregated API
// group/version goes away a peer's document may still list it: the peer
// sees the deletion through its own informers a moment later.
const removedExtensionLag = 3 * time.Second

// Source is one server's local (unmerged) aggregated discovery of
// one root, /api or /apis.
type Source struct {
	Server string
	// Local marks this server's own document.
	Local bool
	// Fresh: the server is live and its last fetch succeeded. A stale
	// source still contributes, but only fresh sources make a version
	// Current.
	Fresh bool
	// FetchedAt is when the document was read.
	FetchedAt time.Time
	Groups    []apidiscoveryv2.APIGroupDiscovery
}

// MergeRules are the cluster facts a merge needs besides the documents.
type MergeRules struct {
	// Extensions are the group/versions of CRDs and aggregated APIs. They
	// are the same on every server, so they are taken from the local
	// document alone: never duplicated.
	Extensions map[schema.GroupVersion]bool
	// Removed records when each former extension group/version went away.
	// A peer's document read before that (plus removedExtensionLag) may
	// still list it and must not bring it back.
	Removed map[schema.GroupVersion]time.Time
}

// skip reports whether src's listing of gv is left out: an extension a
// peer lists (this server's own listing stands for it), or a former
// extension listed by a document, this server's own included, read before
// it went away (plus removedExtensionLag). A server's own discovery drops
// a deleted CRD only after its discovery controller caught up; the peer
// table's informers see the deletion at the same moment or sooner.
func (r MergeRules) skip(src *Source, gv schema.GroupVersion) bool {
	if at, ok := r.Removed[gv]; ok && src.FetchedAt.Before(at.Add(removedExtensionLag)) {
		return true
	}
	return !src.Local && r.Extensions[gv]
}

// Merge merges the sources' documents into one. The result
// depends only on the set of sources, never on which of them is local
// (apart from extensions, which every server holds alike), so every
// server answers the same document for the same cluster state:
//
//   - Groups: the union. Their order keeps each source's order (the
//     servers' group priorities); sources are taken in server ID order,
//     and a group one source lacks goes right after the group that
//     precedes it in the source that has it.
//   - Versions of a group: the union, ordered by Kubernetes version
//     priority (GA before beta before alpha, higher numbers first), so the
//     preferred version is the newest stable one any server serves. A
//     group made only of extension versions keeps this server's order.
//   - Resources of a group/version: the union, ordered like groups. Where
//     servers describe a resource differently, the description from a
//     fresh source wins, then the one with more subresources, then more
//     verbs, then the lowest server ID.
//   - Freshness: a version is Current when a fresh source lists it as
//     Current, otherwise Stale.
func Merge(sources []Source, rules MergeRules) []apidiscoveryv2.APIGroupDiscovery {
	srcs := make([]*Source, len(sources))
	for i := range sources {
		srcs[i] = &sources[i]
	}
	sort.SliceStable(srcs, func(i, j int) bool { return srcs[i].Server < srcs[j].Server })
	m := &merger{rules: rules, groups: map[string]*groupAcc{}}
	for _, src := range srcs {
		m.add(src)
	}
	return m.result()
}

// merger accumulates Merge's sources, one at a time.
type merger struct {
	rules       MergeRules
	groups      map[string]*groupAcc
	groupOrders [][]string // each source's group order
}

type groupAcc struct {
	versions       map[string]*versionAcc
	localOrder     []string
	extensionsOnly bool
}

type versionAcc struct {
	current   bool
	resources map[string]sourcedResource
	orders    [][]string // each source's resource order
	// first is the first source's version: when the merged resources
	// are exactly its own, the result shares its list.
	first *apidiscoveryv2.APIVersionDiscovery
}

type sourcedResource struct {
	src *Source
	r   *apidiscoveryv2.APIResourceDiscovery
}

// add takes in one source's groups.
func (m *merger) add(src *Source) {
	var order []string
	for gi := range src.Groups {
		g := &src.Groups[gi]
		contributed := false
		for vi := range g.Versions {
			v := &g.Versions[vi]
			gv := schema.GroupVersion{Group: g.Name, Version: v.Version}
			if m.rules.skip(src, gv) {
				continue
			}
			m.version(src, gv).add(src, v)
			contributed = true
		}
		if contributed {
			order = append(order, g.Name)
		}
	}
	m.groupOrders = append(m.groupOrders, order)
}

// version is the accumulator of gv, created on first use.
func (m *merger) version(src *Source, gv schema.GroupVersion) *versionAcc {
	acc := m.groups[gv.Group]
	if acc == nil {
		acc = &groupAcc{versions: map[string]*versionAcc{}, extensionsOnly: true}
		m.groups[gv.Group] = acc
	}
	if !m.rules.Extensions[gv] {
		acc.extensionsOnly = false
	}
	if src.Local {
		acc.localOrder = append(acc.localOrder, gv.Version)
	}
	va := acc.versions[gv.Version]
	if va == nil {
		va = &versionAcc{resources: map[string]sourcedResource{}}
		acc.versions[gv.Version] = va
	}
	return va
}

// add takes in one source's resources of this version.
func (va *versionAcc) add(src *Source, v *apidiscoveryv2.APIVersionDiscovery) {
	if src.Fresh && v.Freshness != apidiscoveryv2.DiscoveryFreshnessStale {
		va.current = true
	}
	if va.first == nil {
		va.first = v
	}
	names := make([]string, 0, len(v.Resources))
	for ri := range v.Resources {
		r := &v.Resources[ri]
		names = append(names, r.Resource)
		if cur, ok := va.resources[r.Resource]; !ok || betterResource(src, r, cur.src, cur.r) {
			va.resources[r.Resource] = sourcedResource{src: src, r: r}
		}
	}
	va.orders = append(va.orders, names)
}

// result is the merged document.
func (m *merger) result() []apidiscoveryv2.APIGroupDiscovery {
	out := make([]apidiscoveryv2.APIGroupDiscovery, 0, len(m.groups))
	for _, name := range mergeOrder(m.groupOrders) {
		acc := m.groups[name]
		g := apidiscoveryv2.APIGroupDiscovery{ObjectMeta: metav1.ObjectMeta{Name: name}}
		for _, v := range acc.versionOrder() {
			va := acc.versions[v]
			vd := apidiscoveryv2.APIVersionDiscovery{Version: v, Freshness: apidiscoveryv2.DiscoveryFreshnessStale}
			if va.current {
				vd.Freshness = apidiscoveryv2.DiscoveryFreshnessCurrent
			}
			vd.Resources = va.resourceList()
			g.Versions = append(g.Versions, vd)
		}
		out = append(out, g)
	}
	return out
}

// resourceList is the merged resources in their merged order: the first
// source's own list when that is what they are (every server lists most
// resources alike, and the documents are never modified), else a copy.
func (va *versionAcc) resourceList() []apidiscoveryv2.APIResourceDiscovery {
	order := mergeOrder(va.orders)
	if own := va.first.Resources; len(own) == len(order) {
		same := true
		for i, rn := range order {
			same = same && va.resources[rn].r == &own[i]
		}
		if same {
			return own
		}
	}
	out := make([]apidiscoveryv2.APIResourceDiscovery, 0, len(order))
	for _, rn := range order {
		out = append(out, *va.resources[rn].r)
	}
	return out
}

// versionOrder: by Kubernetes version priority, except that a group made
// only of extension versions keeps this server's order.
func (acc *groupAcc) versionOrder() []string {
	if acc.extensionsOnly && len(acc.localOrder) == len(acc.versions) {
		return acc.localOrder
	}
	versions := make([]string, 0, len(acc.versions))
	for v := range acc.versions {
		versions = append(versions, v)
	}
	sort.Slice(versions, func(i, j int) bool {
		return version.CompareKubeAwareVersionStrings(versions[i], versions[j]) > 0
	})
	return versions
}

// betterResource reports whether a (from sa) describes a resource better
// than b (from sb); see Merge.
func betterResource(sa *Source, a *apidiscoveryv2.APIResourceDiscovery, sb *Source, b *apidiscoveryv2.APIResourceDiscovery) bool {
	if sa.Fresh != sb.Fresh {
		return sa.Fresh
	}
	if len(a.Subresources) != len(b.Subresources) {
		return len(a.Subresources) > len(b.Subresources)
	}
	if len(a.Verbs) != len(b.Verbs) {
		return len(a.Verbs) > len(b.Verbs)
	}
	return sa.Server < sb.Server
}

// mergeOrder merges ordered lists of names into one list that keeps each
// list's order where the lists agree: a name not placed yet goes right
// after the previous name of its own list (first when it has none).
// Earlier lists win where lists disagree. It is linear in the names (a
// linked list), for /apis with thousands of groups.
func mergeOrder(lists [][]string) []string {
	type node struct {
		name string
		next *node
	}
	head, placed, n := &node{}, map[string]*node{}, 0
	for _, list := range lists {
		prev := head
		for _, name := range list {
			if at, ok := placed[name]; ok {
				prev = at
				continue
			}
			at := &node{name: name, next: prev.next}
			prev.next, placed[name], prev = at, at, at
			n++
		}
	}
	out := make([]string, 0, n)
	for at := head.next; at != nil; at = at.next {
		out = append(out, at.name)
	}
	return out
}

// APIGroupList is the unaggregated /apis document of merged groups: each
// group's versions in the merged order, the first one preferred.
func APIGroupList(groups []apidiscoveryv2.APIGroupDiscovery) *metav1.APIGroupList {
	list := &metav1.APIGroupList{TypeMeta: metav1.TypeMeta{Kind: "APIGroupList", APIVersion: "v1"}}
	for i := range groups {
		list.Groups = append(list.Groups, apiGroup(&groups[i]))
	}
	return list
}

func apiGroup(g *apidiscoveryv2.APIGroupDiscovery) metav1.APIGroup {
	out := metav1.APIGroup{TypeMeta: metav1.TypeMeta{Kind: "APIGroup", APIVersion: "v1"}, Name: g.Name}
	for _, v := range g.Versions {
		out.Versions = append(out.Versions, metav1.GroupVersionForDiscovery{
			GroupVersion: schema.GroupVersion{Group: g.Name, Version: v.Version}.String(),
			Version:      v.Version,
		})
	}
	if len(out.Versions) > 0 {
		out.PreferredVersion = out.Versions[0]
	}
	return out
}
