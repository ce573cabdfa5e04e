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

// Package peertable is the controller that keeps the peer table: an
// immutable peers.Snapshot rebuilt from the identity leases, the
// StorageVersions, the extension group/versions and what this server and
// its peers' discovery serve, on every change and as time passes.
package peertable

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apiextensionsinformers "k8s.io/apiextensions-apiserver/pkg/client/informers/externalversions/apiextensions/v1"
	apiextensionslisters "k8s.io/apiextensions-apiserver/pkg/client/listers/apiextensions/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime/schema"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	"k8s.io/apimachinery/pkg/util/wait"
	apiserverinternalinformers "k8s.io/client-go/informers/apiserverinternal/v1alpha1"
	coordinationinformers "k8s.io/client-go/informers/coordination/v1"
	apiserverinternallisters "k8s.io/client-go/listers/apiserverinternal/v1alpha1"
	coordinationlisters "k8s.io/client-go/listers/coordination/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/klog/v2"
	apiregistrationinformers "k8s.io/kube-aggregator/pkg/client/informers/externalversions/apiregistration/v1"
	apiregistrationlisters "k8s.io/kube-aggregator/pkg/client/listers/apiregistration/v1"
	"k8s.io/utils/clock"

	"github.com/mvp-apiserver/kube-apiserver/pkg/controlplane/peerproxy/controller"
	"github.com/mvp-apiserver/kube-apiserver/pkg/controlplane/peerproxy/peers"
)

// DefaultLiveWindow: identity leases renew every 10 s; three missed
// renewals make a peer not live.
const DefaultLiveWindow = 30 * time.Second

// tableKey is the peer table's only work item: every change rebuilds the whole table.
const tableKey = "peer-table"

// Table keeps an immutable peers.Snapshot of the cluster's kube-apiservers up
// to date from their identity leases and StorageVersions.
type Table struct {
	self       string
	liveWindow time.Duration
	clock      clock.Clock

	leases      coordinationlisters.LeaseNamespaceLister
	versions    apiserverinternallisters.StorageVersionLister
	crds        apiextensionslisters.CustomResourceDefinitionLister // nil without proxying
	apiServices apiregistrationlisters.APIServiceLister             // nil without proxying
	synced      []cache.InformerSynced
	local       atomic.Pointer[map[schema.GroupVersionResource]bool]
	discovered  atomic.Pointer[map[string][]schema.GroupVersionResource]
	// queue holds one key, tableKey: every change rebuilds the whole table.
	queue controller.Queue[string]

	current atomic.Pointer[peers.Snapshot]
	built   atomic.Bool
	// missingSince is only touched by sync, which never runs twice at
	// once: the queue holds one key.
	missingSince map[string]time.Time

	mu          sync.Mutex
	subscribers []func(*peers.Snapshot)
}

// Sources are the informers a Table is built from.
type Sources struct {
	// Leases: kube-system identity leases. StorageVersions: all of them.
	Leases          coordinationinformers.LeaseInformer
	StorageVersions apiserverinternalinformers.StorageVersionInformer
	// CRDs and APIServices mark extension group/versions; nil when this
	// server does not proxy.
	CRDs        apiextensionsinformers.CustomResourceDefinitionInformer
	APIServices apiregistrationinformers.APIServiceInformer
}

// New builds a table over its sources.
func New(self string, liveWindow time.Duration, src Sources, clk clock.Clock) *Table {
	t := &Table{
		self:         self,
		liveWindow:   liveWindow,
		clock:        clk,
		leases:       src.Leases.Lister().Leases(metav1.NamespaceSystem),
		versions:     src.StorageVersions.Lister(),
		queue:        controller.NewQueue[string]("mvp_peer_table"),
		missingSince: map[string]time.Time{},
	}
	// An empty table until the first build: nothing is live, nothing known.
	t.current.Store(peers.BuildSnapshot(peers.SnapshotInputs{Self: self, Now: clk.Now(), LiveWindow: liveWindow}))
	informers := []cache.SharedIndexInformer{src.Leases.Informer(), src.StorageVersions.Informer()}
	if src.CRDs != nil {
		t.crds = src.CRDs.Lister()
		informers = append(informers, src.CRDs.Informer())
	}
	if src.APIServices != nil {
		t.apiServices = src.APIServices.Lister()
		informers = append(informers, src.APIServices.Informer())
	}
	h := cache.ResourceEventHandlerFuncs{
		AddFunc:    func(any) { t.queue.Add(tableKey) },
		UpdateFunc: func(any, any) { t.queue.Add(tableKey) },
		DeleteFunc: func(any) { t.queue.Add(tableKey) },
	}
	for _, inf := range informers {
		_, _ = inf.AddEventHandler(h)
		t.synced = append(t.synced, inf.HasSynced)
	}
	return t
}

// SetLocal records what this server serves (every resource of its own
// discovery) and rebuilds the table.
func (t *Table) SetLocal(gvrs map[schema.GroupVersionResource]bool) {
	t.local.Store(&gvrs)
	t.queue.Add(tableKey)
}

// SetDiscovered records the resources each peer's discovery lists (merged
// discovery) and rebuilds the table: resources without storage and those
// registration does not cover route too.
func (t *Table) SetDiscovered(byPeer map[string][]schema.GroupVersionResource) {
	t.discovered.Store(&byPeer)
	t.queue.Add(tableKey)
}

// extensions lists the group/versions of CRDs and of APIServices backed
// by a service.
func (t *Table) extensions() map[schema.GroupVersion]bool {
	out := map[schema.GroupVersion]bool{}
	if t.crds != nil {
		crds, _ := t.crds.List(labels.Everything())
		for _, crd := range crds {
			for _, v := range crd.Spec.Versions {
				if v.Served {
					out[schema.GroupVersion{Group: crd.Spec.Group, Version: v.Name}] = true
				}
			}
		}
	}
	if t.apiServices != nil {
		apiServices, _ := t.apiServices.List(labels.Everything())
		for _, as := range apiServices {
			if as.Spec.Service != nil {
				out[schema.GroupVersion{Group: as.Spec.Group, Version: as.Spec.Version}] = true
			}
		}
	}
	return out
}

// ServedVersionsOnly is the CRD informer's transform: a CRD keeps only
// what extensions reads (its name, group and versions' names and served
// flags), not its schemas, status and managed fields. With 2,000 CRDs the
// full objects are several MB, held a second time beside the apiextensions
// server's own cache.
func ServedVersionsOnly(obj any) (any, error) {
	crd, ok := obj.(*apiextensionsv1.CustomResourceDefinition)
	if !ok {
		return obj, nil // a tombstone: kept as it is
	}
	out := &apiextensionsv1.CustomResourceDefinition{ObjectMeta: metav1.ObjectMeta{
		Name: crd.Name, UID: crd.UID, ResourceVersion: crd.ResourceVersion}}
	out.Spec.Group = crd.Spec.Group
	for _, v := range crd.Spec.Versions {
		out.Spec.Versions = append(out.Spec.Versions, apiextensionsv1.CustomResourceDefinitionVersion{Name: v.Name, Served: v.Served})
	}
	return out, nil
}

// Snapshot returns the current table. It never blocks.
func (t *Table) Snapshot() *peers.Snapshot { return t.current.Load() }

// Subscribe calls f with every new snapshot, from the table's worker.
func (t *Table) Subscribe(f func(*peers.Snapshot)) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.subscribers = append(t.subscribers, f)
}

// HasSynced reports whether the table was built from synced informers.
func (t *Table) HasSynced() bool { return t.built.Load() }

// Run rebuilds the table on every change, and periodically because
// liveness changes with time alone, until ctx ends. One key means one
// worker; more would wait for it.
func (t *Table) Run(ctx context.Context, workers int) {
	defer utilruntime.HandleCrashWithContext(ctx)
	ctx = controller.WithName(ctx, "mvp-peer-table")
	if !cache.WaitForNamedCacheSyncWithContext(ctx, t.synced...) {
		t.queue.ShutDown()
		return
	}
	t.queue.Add(tableKey)
	controller.Run(ctx, t.queue, workers, t.sync, nil)
	wait.UntilWithContext(ctx, func(context.Context) { t.queue.Add(tableKey) }, t.liveWindow/6)
}

// sync rebuilds the whole table, whatever the key.
func (t *Table) sync(ctx context.Context, _ string) error { return t.rebuild(ctx) }

func (t *Table) rebuild(ctx context.Context) error {
	leases, err := t.leases.List(labels.Everything())
	if err != nil {
		return err
	}
	versions, err := t.versions.List(labels.Everything())
	if err != nil {
		return err
	}
	now := t.clock.Now()
	in := peers.SnapshotInputs{
		Self: t.self, Now: now, LiveWindow: t.liveWindow,
		Leases: leases, StorageVersions: versions, MissingSince: t.missingSince,
		Extensions: t.extensions(),
	}
	if l := t.local.Load(); l != nil {
		in.Local = *l
	}
	if d := t.discovered.Load(); d != nil {
		in.Discovered = *d
	}
	snap := peers.BuildSnapshot(in)
	t.trackMissing(snap, leases, now)

	old := t.current.Swap(snap)
	t.built.Store(true)
	logLivenessChanges(klog.FromContext(ctx), old, snap)
	recordPeers(snap)

	t.mu.Lock()
	subs := t.subscribers
	t.mu.Unlock()
	for _, f := range subs {
		f(snap)
	}
	return nil
}

// trackMissing remembers when each server without a lease was first
// seen missing, so that retention counts from its departure, not from every rebuild.
func (t *Table) trackMissing(snap *peers.Snapshot, leases []*coordinationv1.Lease, now time.Time) {
	withLease := make(map[string]bool, len(leases))
	for _, l := range leases {
		withLease[l.Name] = true
	}
	for id := range t.missingSince {
		if withLease[id] {
			delete(t.missingSince, id)
		}
	}
	known := map[string]bool{}
	for _, p := range snap.Peers() {
		known[p.ID] = true
		if !withLease[p.ID] && p.ID != t.self {
			if _, ok := t.missingSince[p.ID]; !ok {
				t.missingSince[p.ID] = now
			}
		}
	}
	// Forget servers that no longer appear anywhere.
	for id := range t.missingSince {
		if !known[id] {
			delete(t.missingSince, id)
		}
	}
}

// logLivenessChanges logs a peer turning live or not live: rare events an
// operator wants to see, never per request.
func logLivenessChanges(logger klog.Logger, old, cur *peers.Snapshot) {
	for _, p := range cur.Peers() {
		if p.ID == cur.Self {
			continue
		}
		was, existed := old.Peer(p.ID)
		switch {
		case p.Live && (!existed || !was.Live):
			logger.Info("Peer kube-apiserver is live", "peer", p.ID, "address", p.Address)
		case !p.Live && existed && was.Live:
			logger.Info("Peer kube-apiserver is no longer live", "peer", p.ID, "lastRenew", p.LastRenew)
		}
	}
}
