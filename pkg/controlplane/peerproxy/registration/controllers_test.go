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
	"context"
	"testing"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes/fake"
	clocktesting "k8s.io/utils/clock/testing"

	"github.com/mvp-apiserver/kube-apiserver/pkg/controlplane/peerproxy/peers"
)

// eventually polls cond every 20 ms until it holds, failing after 10 s.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	err := wait.PollUntilContextTimeout(context.Background(), 20*time.Millisecond, 10*time.Second, true, func(context.Context) (bool, error) { return cond(), nil })
	if err != nil {
		t.Fatalf("%s: never happened", what)
	}
}

// entryOf is server id's entry in StorageVersion name, as stored.
func entryOf(client *fake.Clientset, name, id string) (peers.Entry, bool) {
	sv, err := client.InternalV1alpha1().StorageVersions().Get(context.Background(), name, metav1.GetOptions{})
	if err != nil {
		return peers.Entry{}, false
	}
	return findEntry(sv.Status.StorageVersions, id)
}

// Registration publishes this server's entries beside another server's,
// and puts its own back when someone removes it.
func TestRegistrationPublishesAndHeals(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	client := fake.NewClientset(sv("batch.jobs", entry("b", "batch/v1")))
	factory := informers.NewSharedInformerFactory(client, 0)
	want := map[string]peers.Entry{"batch.jobs": entry("a", "batch/v1"), "apps.deployments": entry("a", "apps/v1")}
	r := NewRegistration("a", client, factory.Internal().V1alpha1().StorageVersions(),
		func(context.Context) (map[string]peers.Entry, error) { return want, nil }, clocktesting.NewFakeClock(t0))
	r.Seed(want)
	factory.Start(ctx.Done())
	go r.Run(ctx, 2)

	eventually(t, "both entries of a published", func() bool {
		_, jobs := entryOf(client, "batch.jobs", "a")
		_, deploy := entryOf(client, "apps.deployments", "a")
		return jobs && deploy
	})
	if _, ok := entryOf(client, "batch.jobs", "b"); !ok {
		t.Fatal("b's entry was lost")
	}
	sv, _ := client.InternalV1alpha1().StorageVersions().Get(ctx, "batch.jobs", metav1.GetOptions{})
	sv.Status.StorageVersions = withEntry(sv.Status.StorageVersions, "a", nil)
	if _, err := client.InternalV1alpha1().StorageVersions().UpdateStatus(ctx, sv, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "a's removed entry written again", func() bool {
		got, ok := entryOf(client, "batch.jobs", "a")
		return ok && entryEqual(got, want["batch.jobs"])
	})
}

// staticTable is a peer table that shows one snapshot and hands it to
// each subscriber once it has synced.
type staticTable struct {
	snap *peers.Snapshot
	subs []func(*peers.Snapshot)
}

func (s *staticTable) Snapshot() *peers.Snapshot         { return s.snap }
func (s *staticTable) Subscribe(f func(*peers.Snapshot)) { s.subs = append(s.subs, f) }

// Retention removes a server departed longer than the window: its entry,
// the StorageVersion it leaves empty, and its identity lease; a live
// server's entry stays.
func TestRetentionCollectsADepartedServer(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	gone, live := lease("gone", "10.0.0.9:6443", time.Hour), lease("b", "10.0.0.2:6443", 0)
	client := fake.NewClientset(
		sv("batch.jobs", entry("b", "batch/v1"), entry("gone", "batch/v1")),
		sv("storagemigration.k8s.io.storageversionmigrations", entry("gone", "storagemigration.k8s.io/v1")),
		gone, live)
	factory := informers.NewSharedInformerFactory(client, 0)
	table := &staticTable{snap: peers.BuildSnapshot(peers.SnapshotInputs{Self: "a", Now: t0, LiveWindow: 30 * time.Second,
		Leases: []*coordinationv1.Lease{gone, live}})}
	r := NewRetention(10*time.Minute, client, factory.Internal().V1alpha1().StorageVersions(), table, clocktesting.NewFakeClock(t0))
	factory.Start(ctx.Done())
	factory.WaitForCacheSync(ctx.Done())
	go r.Run(ctx, 1)
	for _, f := range table.subs {
		f(table.snap)
	}

	eventually(t, "gone's entry, its empty StorageVersion and its lease removed", func() bool {
		_, stillJobs := entryOf(client, "batch.jobs", "gone")
		_, err := client.InternalV1alpha1().StorageVersions().Get(ctx, "storagemigration.k8s.io.storageversionmigrations", metav1.GetOptions{})
		_, leaseErr := client.CoordinationV1().Leases(metav1.NamespaceSystem).Get(ctx, "gone", metav1.GetOptions{})
		return !stillJobs && apierrors.IsNotFound(err) && apierrors.IsNotFound(leaseErr)
	})
	if _, ok := entryOf(client, "batch.jobs", "b"); !ok {
		t.Error("the live server's entry was collected")
	}
	if _, err := client.CoordinationV1().Leases(metav1.NamespaceSystem).Get(ctx, "b", metav1.GetOptions{}); err != nil {
		t.Errorf("the live server's lease: %v", err)
	}
}
