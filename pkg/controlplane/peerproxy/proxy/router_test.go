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
	"reflect"
	"testing"
	"time"

	apiserverinternalv1alpha1 "k8s.io/api/apiserverinternal/v1alpha1"
	coordinationv1 "k8s.io/api/coordination/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apiserver/pkg/endpoints/request"

	"github.com/mvp-apiserver/kube-apiserver/pkg/controlplane/peerproxy/peers"
)

// routerSnapshot: self "a" serves apps/v1 deployments and core pods; live
// "b" and "c" serve batch/v1 jobs; departed "d" alone served
// flowcontrol v1beta3; "b" serves a CRD-looking group too.
func routerSnapshot(local bool) *peers.Snapshot {
	in := peers.SnapshotInputs{
		Self: "a", Now: t0, LiveWindow: 30 * time.Second,
		Leases: []*coordinationv1.Lease{lease("a", "a:1", 0), lease("b", "b:1", 0), lease("c", "c:1", 0), lease("d", "d:1", time.Hour)},
		StorageVersions: []*apiserverinternalv1alpha1.StorageVersion{
			sv("batch.jobs", entry("b", "batch/v1"), entry("c", "batch/v1")),
			sv("apps.deployments", entry("a", "apps/v1"), entry("b", "apps/v1")),
			sv("flowcontrol.apiserver.k8s.io.flowschemas", entry("d", "flowcontrol.apiserver.k8s.io/v1beta3")),
			sv("example.com.widgets", entry("b", "example.com/v1")),
			sv("metrics.k8s.io.pods", entry("b", "metrics.k8s.io/v1beta1")),
		},
		Extensions: map[schema.GroupVersion]bool{
			{Group: "example.com", Version: "v1"}:         true, // a CRD
			{Group: "metrics.k8s.io", Version: "v1beta1"}: true, // an aggregated API
		},
	}
	if local {
		in.Local = map[schema.GroupVersionResource]bool{deployV1: true, podsV1: true}
	}
	return peers.BuildSnapshot(in)
}

func resourceInfo(group, version, resource, sub string) *request.RequestInfo {
	return &request.RequestInfo{IsResourceRequest: true, APIGroup: group, APIVersion: version, Resource: resource, Subresource: sub, Verb: "get"}
}

func TestDecide(t *testing.T) {
	snap := routerSnapshot(true)
	tests := []struct {
		name     string
		info     *request.RequestInfo
		rerouted bool
		snap     *peers.Snapshot
		want     Decision
		peers    []string
	}{
		{name: "1. not a resource request", info: &request.RequestInfo{IsResourceRequest: false, Path: "/healthz"}, snap: snap, want: Local},
		{name: "1. no request info", info: nil, snap: snap, want: Local},
		{name: "2. rerouted request for a peer-only resource", info: resourceInfo("batch", "v1", "jobs", ""), rerouted: true, snap: snap, want: Local},
		{name: "3. served locally", info: resourceInfo("apps", "v1", "deployments", ""), snap: snap, want: Local},
		{name: "3. subresource of a local resource", info: resourceInfo("", "v1", "pods", "log"), snap: snap, want: Local},
		{name: "3. a CRD's group/version", info: resourceInfo("example.com", "v1", "widgets", ""), snap: snap, want: Local},
		{name: "3. an aggregated API's group/version", info: resourceInfo("metrics.k8s.io", "v1beta1", "pods", ""), snap: snap, want: Local},
		{name: "3. own API not read yet: nothing is proxied", info: resourceInfo("batch", "v1", "jobs", ""), snap: routerSnapshot(false), want: Local},
		{name: "4. live peers serve it", info: resourceInfo("batch", "v1", "jobs", ""), snap: snap, want: Proxy, peers: []string{"b", "c"}},
		{name: "4. subresource routes with its resource", info: resourceInfo("batch", "v1", "jobs", "status"), snap: snap, want: Proxy, peers: []string{"b", "c"}},
		{name: "5. only a departed server registered it", info: resourceInfo("flowcontrol.apiserver.k8s.io", "v1beta3", "flowschemas", ""), snap: snap, want: Unavailable},
		{name: "6. nobody knows it: the normal 404", info: resourceInfo("nope.example", "v1", "things", ""), snap: snap, want: Local},
		{name: "6. another version of a peer-served resource", info: resourceInfo("batch", "v2", "jobs", ""), snap: snap, want: Local},
		{name: "nil snapshot", info: resourceInfo("batch", "v1", "jobs", ""), snap: nil, want: Local},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := Decide(tt.info, tt.rerouted, tt.snap)
			if r.Decision != tt.want {
				t.Fatalf("decision = %s, want %s", r.Decision, tt.want)
			}
			var ids []string
			for _, p := range r.Peers {
				ids = append(ids, p.ID)
			}
			if !reflect.DeepEqual(ids, tt.peers) {
				t.Errorf("peers = %v, want %v", ids, tt.peers)
			}
		})
	}
}

func TestDecisionString(t *testing.T) {
	for d, want := range map[Decision]string{Local: "local", Proxy: "proxy", Unavailable: "unavailable"} {
		if d.String() != want {
			t.Errorf("%d.String() = %q, want %q", d, d.String(), want)
		}
	}
}
