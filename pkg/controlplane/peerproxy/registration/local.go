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

package registration

import (
	"fmt"
	"maps"
	"net/http"
	"slices"
	"sort"
	"strings"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	endpointsdiscovery "k8s.io/apiserver/pkg/endpoints/discovery"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/rest"

	"github.com/mvp-apiserver/kube-apiserver/pkg/controlplane/peerproxy/peerclient"
	"github.com/mvp-apiserver/kube-apiserver/pkg/controlplane/peerproxy/peers"
)

// localOnly makes a loopback client see only what this server itself
// serves. Until every path is installed, a group/version this server does
// not serve answers 503 with Retry-After: 5 instead of 404, and client-go
// would sleep those 5 s before asking again, holding readiness back (our
// read runs before it); without the header the read fails at once and is
// retried within 100 ms.
type localOnly struct{ next http.RoundTripper }

func (l localOnly) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set(peerclient.HeaderRerouted, "true")
	resp, err := l.next.RoundTrip(r)
	if err == nil && resp.StatusCode == http.StatusServiceUnavailable {
		resp.Header.Del("Retry-After")
	}
	return resp, err
}

// LocalDiscoveryClient is a discovery client for this server's own API,
// never merged with or proxied to a peer. It reads the unaggregated
// documents: only they carry storageVersionHash.
func LocalDiscoveryClient(loopback *rest.Config) (discovery.DiscoveryInterface, error) {
	cfg := rest.CopyConfig(loopback)
	cfg.Wrap(func(rt http.RoundTripper) http.RoundTripper { return localOnly{next: rt} })
	dc, err := discovery.NewDiscoveryClientForConfig(cfg)
	if err != nil {
		return nil, err
	}
	dc.UseLegacyDiscovery = true
	return dc, nil
}

// LocalResourceLists reads this server's discovery document of every
// group/version the schemes know, skipping those it does not serve (404).
// It does not start from the /apis group list: that list follows the
// APIService objects in the shared etcd, which an older server's
// autoregister controller deletes for groups it does not serve itself.
func LocalResourceLists(dc discovery.DiscoveryInterface, schemes []*runtime.Scheme) ([]*metav1.APIResourceList, error) {
	seen := map[schema.GroupVersion]bool{}
	var lists []*metav1.APIResourceList
	for _, s := range schemes {
		for _, gv := range s.PrioritizedVersionsAllGroups() {
			if seen[gv] {
				continue
			}
			seen[gv] = true
			list, err := dc.ServerResourcesForGroupVersion(gv.String())
			if apierrors.IsNotFound(err) {
				continue
			}
			if err != nil {
				return nil, fmt.Errorf("discovery of %s: %w", gv, err)
			}
			lists = append(lists, list)
		}
	}
	return lists, nil
}

// LocalGVRs is every resource of lists (subresources route with their resource).
func LocalGVRs(lists []*metav1.APIResourceList) map[schema.GroupVersionResource]bool {
	out := map[schema.GroupVersionResource]bool{}
	for _, list := range lists {
		gv, err := schema.ParseGroupVersion(list.GroupVersion)
		if err != nil {
			continue
		}
		for _, r := range list.APIResources {
			if !strings.Contains(r.Name, "/") {
				out[gv.WithResource(r.Name)] = true
			}
		}
	}
	return out
}

// LocalEntries computes this server's StorageVersion entries, one per
// built-in persisted resource it serves, keyed by StorageVersion name.
//
// Persisted resources are the ones discovery gives a storageVersionHash;
// built-in ones are those whose group/version the schemes know (CRDs and
// aggregated APIs are not). The hash also identifies the encoding version.
func LocalEntries(self string, lists []*metav1.APIResourceList, schemes []*runtime.Scheme) (map[string]peers.Entry, error) {
	found, err := persistedResources(lists, schemes)
	if err != nil {
		return nil, err
	}
	out := make(map[string]peers.Entry, len(found))
	for gr, res := range found {
		enc, ok := encodingVersion(schemes, gr.Group, res.kind, res.hash)
		if !ok {
			return nil, fmt.Errorf("no known version of %s (kind %s) matches its storage version hash %s", gr, res.kind, res.hash)
		}
		decodable := map[string]bool{enc: true}
		for _, s := range res.served {
			decodable[s] = true
		}
		for _, s := range schemes {
			for _, gv := range s.PrioritizedVersionsForGroup(gr.Group) {
				if s.Recognizes(gv.WithKind(res.kind)) {
					decodable[gv.String()] = true
				}
			}
		}
		sort.Strings(res.served)
		out[peers.StorageVersionName(gr)] = peers.Entry{
			APIServerID:       self,
			EncodingVersion:   enc,
			DecodableVersions: slices.Sorted(maps.Keys(decodable)),
			ServedVersions:    res.served,
		}
	}
	return out, nil
}

// persistedResource is one built-in persisted resource as discovery lists it.
type persistedResource struct {
	kind   string
	hash   string
	served []string // the group/versions that serve it
}

// persistedResources finds, in lists, the resources with storage whose
// group/version the schemes know.
func persistedResources(lists []*metav1.APIResourceList, schemes []*runtime.Scheme) (map[schema.GroupResource]*persistedResource, error) {
	found := map[schema.GroupResource]*persistedResource{}
	for _, list := range lists {
		gv, err := schema.ParseGroupVersion(list.GroupVersion)
		if err != nil {
			return nil, fmt.Errorf("discovery lists an invalid group/version %q: %w", list.GroupVersion, err)
		}
		if !versionKnown(schemes, gv) {
			continue
		}
		for _, r := range list.APIResources {
			if strings.Contains(r.Name, "/") || r.StorageVersionHash == "" {
				continue // subresources and resources without storage
			}
			gr := gv.WithResource(r.Name).GroupResource()
			res := found[gr]
			if res == nil {
				res = &persistedResource{kind: r.Kind, hash: r.StorageVersionHash}
				found[gr] = res
			}
			res.served = append(res.served, gv.String())
		}
	}
	return found, nil
}

func versionKnown(schemes []*runtime.Scheme, gv schema.GroupVersion) bool {
	for _, s := range schemes {
		if s.IsVersionRegistered(gv) {
			return true
		}
	}
	return false
}

// encodingVersion finds the group/version whose storage version hash is
// hash: first among the resource's own group, then any group that has the
// kind (some resources are stored as another group's type).
func encodingVersion(schemes []*runtime.Scheme, group, kind, hash string) (string, bool) {
	for _, s := range schemes {
		for _, gv := range s.PrioritizedVersionsForGroup(group) {
			if endpointsdiscovery.StorageVersionHash(gv.Group, gv.Version, kind) == hash {
				return gv.String(), true
			}
		}
	}
	for _, s := range schemes {
		for gvk := range s.AllKnownTypes() {
			if gvk.Kind == kind && gvk.Version != runtime.APIVersionInternal &&
				endpointsdiscovery.StorageVersionHash(gvk.Group, gvk.Version, kind) == hash {
				return gvk.GroupVersion().String(), true
			}
		}
	}
	return "", false
}
