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
	"reflect"
	"testing"
	"time"

	apiserverinternalv1alpha1 "k8s.io/api/apiserverinternal/v1alpha1"
	coordinationv1 "k8s.io/api/coordination/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/mvp-apiserver/kube-apiserver/pkg/controlplane/peerproxy/peers"
)

func TestExpiredServers(t *testing.T) {
	const window = 10 * time.Minute
	snap := peers.BuildSnapshot(peers.SnapshotInputs{
		Self: "self", Now: t0, LiveWindow: 30 * time.Second,
		Leases: []*coordinationv1.Lease{
			lease("self", "s:1", 0),
			lease("live", "l:1", 5*time.Second),
			lease("stale-recent", "r:1", 2*time.Minute), // not live, departed 2m ago
			lease("stale-old", "o:1", 11*time.Minute),   // not live, departed 11m ago
			lease("stale-edge", "e:1", 10*time.Minute),  // exactly the window
		},
		StorageVersions: []*apiserverinternalv1alpha1.StorageVersion{sv("batch.jobs",
			entry("gone-recent", "batch/v1"), entry("gone-old", "batch/v1"))},
		MissingSince: map[string]time.Time{"gone-recent": t0.Add(-time.Minute), "gone-old": t0.Add(-time.Hour)},
	})

	tests := []struct {
		name    string
		entries []peers.Entry
		want    []string
	}{
		{name: "self is never collected", entries: []peers.Entry{entry("self", "v1")}},
		{name: "live server is kept", entries: []peers.Entry{entry("live", "v1")}},
		{name: "departed within the window is kept", entries: []peers.Entry{entry("stale-recent", "v1")}},
		{name: "departed past the window is collected", entries: []peers.Entry{entry("stale-old", "v1")}, want: []string{"stale-old"}},
		{name: "departed exactly the window ago is collected", entries: []peers.Entry{entry("stale-edge", "v1")}, want: []string{"stale-edge"}},
		{name: "lease gone recently is kept", entries: []peers.Entry{entry("gone-recent", "v1")}},
		{name: "lease gone long ago is collected", entries: []peers.Entry{entry("gone-old", "v1")}, want: []string{"gone-old"}},
		{name: "server the snapshot has not seen is kept", entries: []peers.Entry{entry("brand-new", "v1")}},
		{name: "mixed", entries: []peers.Entry{entry("self", "v1"), entry("stale-old", "v1"), entry("live", "v1"), entry("gone-old", "v1")},
			want: []string{"stale-old", "gone-old"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := expiredServers(tt.entries, snap, t0, window)
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("expiredServers = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestCollectable(t *testing.T) {
	snap := peers.BuildSnapshot(peers.SnapshotInputs{Self: "self", Now: t0, LiveWindow: 30 * time.Second,
		Leases: []*coordinationv1.Lease{lease("self", "s:1", 0), lease("old", "o:1", time.Hour)}})
	empty := func(age time.Duration) *apiserverinternalv1alpha1.StorageVersion {
		s := sv("apps.deployments")
		s.CreationTimestamp = metav1.NewTime(t0.Add(-age))
		return s
	}
	tests := []struct {
		name string
		sv   *apiserverinternalv1alpha1.StorageVersion
		want bool
	}{
		{name: "empty and just created: its writer is about to fill it", sv: empty(10 * time.Second), want: false},
		{name: "empty past the grace", sv: empty(2 * time.Minute), want: true},
		{name: "only live entries", sv: sv("apps.deployments", entry("self", "apps/v1")), want: false},
		{name: "an expired entry", sv: sv("apps.deployments", entry("self", "apps/v1"), entry("old", "apps/v1")), want: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := collectable(tt.sv, snap, t0, 10*time.Minute); got != tt.want {
				t.Errorf("collectable = %v, want %v", got, tt.want)
			}
		})
	}
}
