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

package peers_test

import (
	"reflect"
	"testing"
	"time"

	apiserverinternalv1alpha1 "k8s.io/api/apiserverinternal/v1alpha1"
	coordinationv1 "k8s.io/api/coordination/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/mvp-apiserver/kube-apiserver/pkg/controlplane/peerproxy/peers"
)

func TestBuildSnapshot(t *testing.T) {
	type want struct {
		live  []string // IDs of LivePeers(gvr)
		known bool
	}
	tests := []struct {
		name    string
		leases  []*coordinationv1.Lease
		svs     []*apiserverinternalv1alpha1.StorageVersion
		missing map[string]time.Time
		want    map[schema.GroupVersionResource]want
		peers   map[string]peers.Peer // checked fields: Live, Address, DepartedAt
	}{
		{
			name:   "peer serving a resource self lacks is routed to",
			leases: []*coordinationv1.Lease{lease("a", "10.0.0.1:6443", time.Second), lease("b", "10.0.0.2:6443", 5*time.Second)},
			svs: []*apiserverinternalv1alpha1.StorageVersion{
				sv("batch.jobs", entry("b", "batch/v1")),
				sv("apps.deployments", entry("a", "apps/v1"), entry("b", "apps/v1")),
			},
			want: map[schema.GroupVersionResource]want{
				jobsV1:   {live: []string{"b"}, known: true},
				deployV1: {live: []string{"b"}, known: true}, // self is never a peer
				podsV1:   {known: false},
			},
		},
		{
			name:   "core group name maps to the empty group",
			leases: []*coordinationv1.Lease{lease("a", "x:1", 0), lease("b", "y:1", 0)},
			svs:    []*apiserverinternalv1alpha1.StorageVersion{sv("core.pods", entry("b", "v1"))},
			want:   map[schema.GroupVersionResource]want{podsV1: {live: []string{"b"}, known: true}},
		},
		{
			name:   "dotted group parses on the last dot",
			leases: []*coordinationv1.Lease{lease("a", "x:1", 0), lease("b", "y:1", 0)},
			svs: []*apiserverinternalv1alpha1.StorageVersion{sv("flowcontrol.apiserver.k8s.io.flowschemas",
				entry("b", "flowcontrol.apiserver.k8s.io/v1", "flowcontrol.apiserver.k8s.io/v1beta3"))},
			want: map[schema.GroupVersionResource]want{flowV1b3: {live: []string{"b"}, known: true}},
		},
		{
			name:   "renewal older than the live window is not live but still known",
			leases: []*coordinationv1.Lease{lease("a", "x:1", 0), lease("b", "y:1", 31*time.Second)},
			svs:    []*apiserverinternalv1alpha1.StorageVersion{sv("batch.jobs", entry("b", "batch/v1"))},
			want:   map[schema.GroupVersionResource]want{jobsV1: {known: true}},
			peers:  map[string]peers.Peer{"b": {Live: false, Address: "y:1", DepartedAt: t0.Add(-31 * time.Second)}},
		},
		{
			name:   "renewal exactly at the window edge is live",
			leases: []*coordinationv1.Lease{lease("a", "x:1", 0), lease("b", "y:1", 30*time.Second)},
			svs:    []*apiserverinternalv1alpha1.StorageVersion{sv("batch.jobs", entry("b", "batch/v1"))},
			want:   map[schema.GroupVersionResource]want{jobsV1: {live: []string{"b"}, known: true}},
		},
		{
			name:    "entry without a lease (graceful shutdown) is known, not live, departed when first missed",
			leases:  []*coordinationv1.Lease{lease("a", "x:1", 0)},
			svs:     []*apiserverinternalv1alpha1.StorageVersion{sv("batch.jobs", entry("b", "batch/v1"))},
			missing: map[string]time.Time{"b": t0.Add(-time.Minute)},
			want:    map[schema.GroupVersionResource]want{jobsV1: {known: true}},
			peers:   map[string]peers.Peer{"b": {Live: false, DepartedAt: t0.Add(-time.Minute)}},
		},
		{
			name:   "lease marked stopped after its last renewal (graceful stop of ours) is not live",
			leases: []*coordinationv1.Lease{lease("a", "x:1", 0), stoppedLease(lease("b", "y:1", 2*time.Second), time.Second)},
			svs:    []*apiserverinternalv1alpha1.StorageVersion{sv("batch.jobs", entry("b", "batch/v1"))},
			want:   map[schema.GroupVersionResource]want{jobsV1: {known: true}},
			peers:  map[string]peers.Peer{"b": {Live: false, Address: "y:1", DepartedAt: t0.Add(-2 * time.Second)}},
		},
		{
			name:   "a renewal after the stop mark (restarted) is live again",
			leases: []*coordinationv1.Lease{lease("a", "x:1", 0), stoppedLease(lease("b", "y:1", time.Second), 2*time.Second)},
			svs:    []*apiserverinternalv1alpha1.StorageVersion{sv("batch.jobs", entry("b", "batch/v1"))},
			want:   map[schema.GroupVersionResource]want{jobsV1: {live: []string{"b"}, known: true}},
		},
		{
			name:   "live peer without an address cannot be routed to",
			leases: []*coordinationv1.Lease{lease("a", "x:1", 0), lease("b", "", 0)},
			svs:    []*apiserverinternalv1alpha1.StorageVersion{sv("batch.jobs", entry("b", "batch/v1"))},
			want:   map[schema.GroupVersionResource]want{jobsV1: {known: true}},
		},
		{
			name:   "lease never renewed is not live",
			leases: []*coordinationv1.Lease{lease("a", "x:1", 0), lease("b", "y:1", -1)},
			svs:    []*apiserverinternalv1alpha1.StorageVersion{sv("batch.jobs", entry("b", "batch/v1"))},
			want:   map[schema.GroupVersionResource]want{jobsV1: {known: true}},
		},
		{
			name:   "several live peers are listed in ID order",
			leases: []*coordinationv1.Lease{lease("a", "x:1", 0), lease("c", "z:1", 0), lease("b", "y:1", 0)},
			svs:    []*apiserverinternalv1alpha1.StorageVersion{sv("batch.jobs", entry("c", "batch/v1"), entry("b", "batch/v1"))},
			want:   map[schema.GroupVersionResource]want{jobsV1: {live: []string{"b", "c"}, known: true}},
		},
		{
			name:   "served version of another group and bad names are ignored",
			leases: []*coordinationv1.Lease{lease("a", "x:1", 0), lease("b", "y:1", 0)},
			svs: []*apiserverinternalv1alpha1.StorageVersion{
				sv("batch.jobs", entry("b", "apps/v1")),
				sv("nodots", entry("b", "v1")),
				sv("trailing.", entry("b", "v1")),
			},
			want: map[schema.GroupVersionResource]want{jobsV1: {known: false}, {Group: "apps", Version: "v1", Resource: "jobs"}: {known: false}},
		},
		{
			name:   "self without a lease yet is live to itself",
			leases: nil,
			svs:    []*apiserverinternalv1alpha1.StorageVersion{sv("batch.jobs", entry("a", "batch/v1"))},
			want:   map[schema.GroupVersionResource]want{jobsV1: {known: true}},
			peers:  map[string]peers.Peer{"a": {Live: true}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := peers.BuildSnapshot(peers.SnapshotInputs{Self: "a", Now: t0, LiveWindow: 30 * time.Second, Leases: tt.leases, StorageVersions: tt.svs, MissingSince: tt.missing})
			for gvr, w := range tt.want {
				var ids []string
				for _, p := range s.LivePeers(gvr) {
					ids = append(ids, p.ID)
				}
				if !reflect.DeepEqual(ids, w.live) {
					t.Errorf("LivePeers(%s) = %v, want %v", gvr, ids, w.live)
				}
				if got := s.Known(gvr); got != w.known {
					t.Errorf("Known(%s) = %v, want %v", gvr, got, w.known)
				}
			}
			for id, w := range tt.peers {
				p, ok := s.Peer(id)
				if !ok {
					t.Fatalf("peer %s missing", id)
				}
				if p.Live != w.Live || p.Address != w.Address || !p.DepartedAt.Equal(w.DepartedAt) {
					t.Errorf("peer %s = %+v, want live=%v address=%q departedAt=%v", id, p, w.Live, w.Address, w.DepartedAt)
				}
			}
		})
	}
}

func TestNilSnapshotIsEmpty(t *testing.T) {
	var s *peers.Snapshot
	if s.Known(jobsV1) || len(s.LivePeers(jobsV1)) != 0 || len(s.Peers()) != 0 || len(s.GVRs()) != 0 {
		t.Fatal("a nil snapshot must know nothing")
	}
}

// Discovery feeds the router: a resource without storage that only a peer
// lists routes to that peer; extensions never do.
func TestBuildSnapshotUsesDiscoveredResources(t *testing.T) {
	reviews := schema.GroupVersionResource{Group: "authentication.k8s.io", Version: "v1beta1", Resource: "selfsubjectreviews"}
	widgets := schema.GroupVersionResource{Group: "example.com", Version: "v1", Resource: "widgets"}
	snap := peers.BuildSnapshot(peers.SnapshotInputs{
		Self: "a", Now: t0, LiveWindow: 30 * time.Second,
		Leases:     []*coordinationv1.Lease{lease("a", "127.0.0.1:6443", 0), lease("b", "127.0.0.2:6443", 0), lease("gone", "127.0.0.3:6443", time.Hour)},
		Local:      map[schema.GroupVersionResource]bool{podsV1: true},
		Extensions: map[schema.GroupVersion]bool{widgets.GroupVersion(): true},
		Discovered: map[string][]schema.GroupVersionResource{
			"b":        {reviews, widgets},
			"gone":     {jobsV1},
			"a":        {deployV1},
			"stranger": {flowV1b3},
		},
	})
	if ps := snap.LivePeers(reviews); len(ps) != 1 || ps[0].ID != "b" {
		t.Errorf("selfsubjectreviews routes to %v, want b", ps)
	}
	if ps := snap.LivePeers(widgets); len(ps) != 0 || snap.Known(widgets) {
		t.Errorf("an extension must never route to a peer: %v", ps)
	}
	if len(snap.LivePeers(jobsV1)) != 0 || !snap.Known(jobsV1) {
		t.Errorf("a departed peer's resource must be known (503) but not routed")
	}
	if snap.Known(deployV1) || snap.Known(flowV1b3) {
		t.Errorf("self's and unknown servers' discovery must be ignored")
	}
}
