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
	"fmt"
	"slices"
	"sync/atomic"
	"time"

	"github.com/mvp-apiserver/kube-apiserver/pkg/controlplane/peerproxy/controller"

	apiserverinternalv1alpha1 "k8s.io/api/apiserverinternal/v1alpha1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime/schema"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	apiserverinternallisters "k8s.io/client-go/listers/apiserverinternal/v1alpha1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/util/retry"
	"k8s.io/klog/v2"
	"k8s.io/utils/clock"

	"github.com/mvp-apiserver/kube-apiserver/pkg/controlplane/peerproxy/peers"
)

// Registration publishes this server's entry in the StorageVersion of
// every built-in persisted resource it serves, and heals edits and
// deletions of those entries. Every server runs one; writes are
// read-modify-write with conflict retry, so none loses another's entry.
type Registration struct {
	self   string
	client kubernetes.Interface
	lister apiserverinternallisters.StorageVersionLister
	synced cache.InformerSynced
	// queue holds StorageVersion names.
	queue controller.Queue[string]
	clock clock.Clock
	// resync: how often this server's entries are recomputed and every
	// StorageVersion checked again, events or not.
	resync time.Duration
	// local computes this server's entries; retried until it succeeds.
	local func(context.Context) (map[string]peers.Entry, error)

	// desired is nil until local has succeeded once.
	desired atomic.Pointer[map[string]peers.Entry]
}

// DefaultResync is how often Registration recomputes this server's entries.
const DefaultResync = 5 * time.Minute

// NewRegistration builds the controller over a StorageVersion informer;
// local computes this server's entries.
func NewRegistration(self string, client kubernetes.Interface, versions apiserverinternalinformers.StorageVersionInformer, local func(context.Context) (map[string]peers.Entry, error), clk clock.Clock) *Registration {
	r := &Registration{
		self:   self,
		client: client,
		lister: versions.Lister(),
		synced: versions.Informer().HasSynced,
		queue:  controller.NewQueue[string]("mvp_storage_version_registration"),
		clock:  clk,
		resync: DefaultResync,
		local:  local,
	}
	_, _ = versions.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    r.enqueue,
		UpdateFunc: func(_, obj any) { r.enqueue(obj) },
		DeleteFunc: r.enqueue,
	})
	return r
}

func (r *Registration) enqueue(obj any) {
	key, err := cache.DeletionHandlingMetaNamespaceKeyFunc(obj)
	if err != nil {
		return
	}
	if d := r.desired.Load(); d != nil {
		if _, ok := (*d)[key]; ok {
			r.queue.Add(key)
			return
		}
	}
	// Not ours to have: still look, in case it holds a stale entry of ours.
	if sv, ok := obj.(*apiserverinternalv1alpha1.StorageVersion); ok {
		if _, has := findEntry(sv.Status.StorageVersions, r.self); has {
			r.queue.Add(key)
		}
	}
}

// Run waits for this server's first entries (Seed), then keeps them
// published until ctx ends. Every resync it recomputes them and re-checks
// every entry even without events.
func (r *Registration) Run(ctx context.Context, workers int) {
	defer utilruntime.HandleCrashWithContext(ctx)
	ctx = controller.WithName(ctx, "mvp-storage-version-registration")
	logger := klog.FromContext(ctx)
	if !cache.WaitForNamedCacheSyncWithContext(ctx, r.synced) {
		r.queue.ShutDown()
		return
	}
	// The peer-table hook reads this server's API before readiness and
	// seeds the first entries; later ones are recomputed every resync.
	if wait.PollUntilContextCancel(ctx, 100*time.Millisecond, true, func(context.Context) (bool, error) {
		return r.desired.Load() != nil, nil
	}) != nil {
		r.queue.ShutDown()
		return
	}
	logger.Info("Registering this server's storage versions", "server", r.self, "resources", len(*r.desired.Load()))
	r.enqueueAll()
	controller.Run(ctx, r.queue, workers, r.sync, failedOperation[string]("write"))
	wait.UntilWithContext(ctx, func(ctx context.Context) {
		if err := r.refreshDesired(ctx); err != nil {
			logger.Error(err, "Cannot recompute this server's storage versions; keeping the last ones")
		}
		r.enqueueAll()
	}, r.resync)
}

// refreshDesired recomputes this server's entries, retrying until it
// succeeds or ctx ends.
func (r *Registration) refreshDesired(ctx context.Context) error {
	return wait.PollUntilContextCancel(ctx, time.Second, true, func(ctx context.Context) (bool, error) {
		entries, err := r.local(ctx)
		if err != nil {
			registrationErrors.WithLabelValues("discover").Inc()
			klog.FromContext(ctx).Error(err, "Cannot compute this server's storage versions yet; retrying")
			return false, nil
		}
		r.desired.Store(&entries)
		return true, nil
	})
}

// Seed sets this server's first entries, read by whoever read its API.
func (r *Registration) Seed(entries map[string]peers.Entry) { r.desired.Store(&entries) }

func (r *Registration) enqueueAll() {
	if d := r.desired.Load(); d != nil {
		for name := range *d {
			r.queue.Add(name)
		}
	}
	all, _ := r.lister.List(labels.Everything())
	for _, sv := range all {
		r.enqueue(sv)
	}
}

// sync makes StorageVersion name hold exactly this server's desired entry
// (or none, if it serves no such resource). It is idempotent.
func (r *Registration) sync(ctx context.Context, name string) error {
	d := r.desired.Load()
	if d == nil {
		return nil
	}
	want, wanted := (*d)[name]
	if sv, err := r.lister.Get(name); err == nil {
		got, has := findEntry(sv.Status.StorageVersions, r.self)
		if wanted && has && entryEqual(got, want) && statusConsistent(&sv.Status) {
			return nil
		}
		if !wanted && !has {
			return nil
		}
	} else if apierrors.IsNotFound(err) && !wanted {
		return nil
	}

	var e *peers.Entry
	if wanted {
		e = &want
	}
	return writeEntries(ctx, r.client, name, wanted, r.clock, func(entries []peers.Entry) []peers.Entry {
		return withEntry(entries, r.self, e)
	})
}

// writeEntries applies edit to StorageVersion name's entries with
// read-modify-write and conflict retry. create: make the object if it is
// missing. An object left without entries is deleted.
func writeEntries(ctx context.Context, client kubernetes.Interface, name string, create bool, clk clock.Clock, edit func([]peers.Entry) []peers.Entry) error {
	svs := client.InternalV1alpha1().StorageVersions()
	return retry.RetryOnConflict(retry.DefaultRetry, func() error {
		sv, err := svs.Get(ctx, name, metav1.GetOptions{})
		switch {
		case apierrors.IsNotFound(err) && create:
			sv, err = svs.Create(ctx, &apiserverinternalv1alpha1.StorageVersion{ObjectMeta: metav1.ObjectMeta{Name: name}}, metav1.CreateOptions{})
			if apierrors.IsAlreadyExists(err) {
				// Another server created it first: read theirs and retry.
				return apierrors.NewConflict(schema.GroupResource{Group: "internal.apiserver.k8s.io", Resource: "storageversions"}, name, err)
			}
			if err != nil {
				return err
			}
		case apierrors.IsNotFound(err):
			return nil
		case err != nil:
			return err
		}

		entries := edit(sv.Status.StorageVersions)
		if len(entries) == 0 {
			rv, uid := sv.ResourceVersion, sv.UID
			err := svs.Delete(ctx, name, metav1.DeleteOptions{Preconditions: &metav1.Preconditions{ResourceVersion: &rv, UID: &uid}})
			if apierrors.IsNotFound(err) {
				return nil
			}
			return err
		}
		before := sv.Status.DeepCopy()
		setStatus(&sv.Status, entries, metav1.NewTime(clk.Now()))
		if statusEqual(before, &sv.Status) {
			return nil
		}
		if _, err := svs.UpdateStatus(ctx, sv, metav1.UpdateOptions{}); err != nil {
			return fmt.Errorf("updating StorageVersion %s: %w", name, err)
		}
		return nil
	})
}

// statusEqual: a and b hold the same entries, and a's status already
// agrees with them.
func statusEqual(a, b *apiserverinternalv1alpha1.StorageVersionStatus) bool {
	return statusConsistent(a) && slices.EqualFunc(a.StorageVersions, b.StorageVersions, entryEqual)
}
