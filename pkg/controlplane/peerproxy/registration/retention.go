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
	apiserverinternalinformers "k8s.io/client-go/informers/apiserverinternal/v1alpha1"

	"context"
	"time"

	"github.com/mvp-apiserver/kube-apiserver/pkg/controlplane/peerproxy/controller"

	apiserverinternalv1alpha1 "k8s.io/api/apiserverinternal/v1alpha1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	"k8s.io/client-go/kubernetes"
	apiserverinternallisters "k8s.io/client-go/listers/apiserverinternal/v1alpha1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/klog/v2"
	"k8s.io/utils/clock"

	"github.com/mvp-apiserver/kube-apiserver/pkg/controlplane/peerproxy/peers"
)

// DefaultRetention keeps a departed server's entries and identity lease
// this long.
const DefaultRetention = 10 * time.Minute

// Table is the peer table as retention reads it.
type Table interface {
	Snapshot() *peers.Snapshot
	// Subscribe calls f with every new snapshot.
	Subscribe(f func(*peers.Snapshot))
}

// emptyGrace is how long an entry-less StorageVersion may exist before it
// is collected: a writer creates the object, then writes its status.
const emptyGrace = time.Minute

// Retention removes departed servers' entries and identity leases once they
// have been gone for the retention window, and deletes StorageVersions left
// with no entry.
// Until then the entries keep the cluster knowing that the resource exists
// (a 503, not a 404). Safe to run on every server at once.
type Retention struct {
	window time.Duration
	client kubernetes.Interface
	lister apiserverinternallisters.StorageVersionLister
	synced cache.InformerSynced
	table  Table
	// versions holds StorageVersion names, leases departed servers' IDs.
	versions, leases controller.Queue[string]
	clock            clock.Clock
}

// NewRetention builds the collector; it rescans whenever the table changes.
func NewRetention(window time.Duration, client kubernetes.Interface, versions apiserverinternalinformers.StorageVersionInformer, table Table, clk clock.Clock) *Retention {
	r := &Retention{
		window:   window,
		client:   client,
		lister:   versions.Lister(),
		synced:   versions.Informer().HasSynced,
		table:    table,
		versions: controller.NewQueue[string]("mvp_storage_version_retention"),
		leases:   controller.NewQueue[string]("mvp_identity_lease_retention"),
		clock:    clk,
	}
	table.Subscribe(r.scan)
	return r
}

// scan queues every StorageVersion that has something to collect.
func (r *Retention) scan(snap *peers.Snapshot) {
	if !r.synced() {
		return
	}
	all, err := r.lister.List(labels.Everything())
	if err != nil {
		return
	}
	now := r.clock.Now()
	for _, sv := range all {
		if collectable(sv, snap, now, r.window) {
			r.versions.Add(sv.Name)
		}
	}
	for _, id := range expiredLeases(snap, now, r.window) {
		r.leases.Add(id)
	}
}

// expiredLeases lists the servers whose identity lease was last renewed at
// least window ago: servers of ours keep their lease when they stop
// (KeepIdentityLease), so vanilla peers keep asking for them (a 503) until
// it is gone; after the window nothing of theirs is left to route to.
func expiredLeases(snap *peers.Snapshot, now time.Time, window time.Duration) []string {
	var out []string
	for _, p := range snap.Peers() {
		if p.ID != snap.Self && !p.Live && !p.LastRenew.IsZero() && now.Sub(p.LastRenew) >= window {
			out = append(out, p.ID)
		}
	}
	return out
}

// deleteLease deletes a departed server's identity lease, unless it was
// renewed since (a restarted server keeps its identity).
func (r *Retention) deleteLease(ctx context.Context, id string) error {
	leases := r.client.CoordinationV1().Leases(metav1.NamespaceSystem)
	l, err := leases.Get(ctx, id, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return err
	}
	if l.Spec.RenewTime != nil && r.clock.Now().Sub(l.Spec.RenewTime.Time) < r.window {
		return nil
	}
	err = leases.Delete(ctx, id, metav1.DeleteOptions{Preconditions: &metav1.Preconditions{ResourceVersion: &l.ResourceVersion}})
	if err == nil {
		klog.FromContext(ctx).Info("Deleted a departed kube-apiserver's identity lease after the retention window", "lease", id, "lastRenew", l.Spec.RenewTime)
	}
	if apierrors.IsNotFound(err) || apierrors.IsConflict(err) {
		return nil // gone already, or renewed: the next scan decides again
	}
	return err
}

// Run collects with workers per queue until ctx ends.
func (r *Retention) Run(ctx context.Context, workers int) {
	defer utilruntime.HandleCrashWithContext(ctx)
	ctx = controller.WithName(ctx, "mvp-storage-version-retention")
	if !cache.WaitForNamedCacheSyncWithContext(ctx, r.synced) {
		r.versions.ShutDown()
		r.leases.ShutDown()
		return
	}
	controller.Run(ctx, r.versions, workers, r.syncStorageVersion, failedOperation[string]("collect"))
	controller.Run(ctx, r.leases, workers, r.deleteLease, failedOperation[string]("collect"))
	<-ctx.Done()
}

// syncStorageVersion removes from StorageVersion name the entries of
// servers departed longer than the window, and deletes it once empty.
func (r *Retention) syncStorageVersion(ctx context.Context, name string) error {
	snap := r.table.Snapshot()
	now := r.clock.Now()
	sv, err := r.lister.Get(name)
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return err
	}
	if !collectable(sv, snap, now, r.window) {
		return nil
	}
	removed := 0
	err = writeEntries(ctx, r.client, name, false, r.clock, func(entries []peers.Entry) []peers.Entry {
		expired := expiredServers(entries, snap, now, r.window)
		removed = len(expired)
		out := entries
		for _, id := range expired {
			out = withEntry(out, id, nil)
		}
		return out
	})
	if err == nil && removed > 0 {
		entriesCollected.Add(float64(removed))
		klog.FromContext(ctx).V(2).Info("Collected departed servers' storage version entries", "storageVersion", name, "entries", removed)
	}
	return err
}

// collectable: sv holds an expired entry, or no entry at all past the grace.
func collectable(sv *apiserverinternalv1alpha1.StorageVersion, snap *peers.Snapshot, now time.Time, window time.Duration) bool {
	if len(sv.Status.StorageVersions) == 0 {
		return now.Sub(sv.CreationTimestamp.Time) > emptyGrace
	}
	return len(expiredServers(sv.Status.StorageVersions, snap, now, window)) > 0
}

// expiredServers returns the IDs of the entries whose servers stopped
// being live at least window ago. This server, live servers and servers
// the snapshot does not know yet are never expired.
func expiredServers(entries []peers.Entry, snap *peers.Snapshot, now time.Time, window time.Duration) []string {
	var out []string
	for _, e := range entries {
		if e.APIServerID == snap.Self {
			continue
		}
		p, ok := snap.Peer(e.APIServerID)
		if !ok || p.Live || p.DepartedAt.IsZero() {
			continue
		}
		if now.Sub(p.DepartedAt) >= window {
			out = append(out, e.APIServerID)
		}
	}
	return out
}
