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
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/apiserver/pkg/reconcilers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/util/retry"
	"k8s.io/klog/v2"
	"k8s.io/utils/clock"

	"github.com/mvp-apiserver/kube-apiserver/pkg/controlplane/peerproxy/peers"
)

// Vanilla kube-apiservers (1.36 and 1.37) build their peers' discovery
// from the identity leases that exist, and fetch it again only when a
// lease is added, deleted, or changes holder. A restart of upstream's lease
// controller deletes and re-creates the lease under a new random holder:
// vanilla peers then drop this server and answer a false 404 for what only
// it serves until a fetch succeeds again. So this server's lease is never
// deleted by its own controller (the delete is recorded as a stop), and its
// holder changes once per start, when the server is ready: vanilla peers
// then fetch its complete discovery at once, which also undoes a drop of
// this server by any rebuild of theirs while it was down (a vanilla peer
// rebuilds its whole cache on any lease added, deleted or re-held in the
// cluster, and on retries of failed fetches, dropping every peer it cannot
// reach at that moment).

// KeepIdentityLease wraps the loopback transport: upstream's lease
// controller's DELETE of this server's own identity lease (at start and at
// stop) becomes a merge patch that records the stop and shortens the
// lease's duration to the retention window, so that, should no server of
// ours remain to collect it, upstream's lease garbage collector removes
// it once the window has passed.
func KeepIdentityLease(serverID string, retention time.Duration, clk clock.Clock) func(http.RoundTripper) http.RoundTripper {
	path := "/apis/coordination.k8s.io/v1/namespaces/kube-system/leases/" + serverID
	if retention <= 0 {
		retention = DefaultRetention
	}
	return func(next http.RoundTripper) http.RoundTripper {
		return roundTripperFunc(func(r *http.Request) (*http.Response, error) {
			if r.Method != http.MethodDelete || r.URL.Path != path {
				return next.RoundTrip(r)
			}
			patch := peers.StopPatch(clk.Now(), retention)
			out := r.Clone(r.Context())
			out.Method = http.MethodPatch
			out.Body = io.NopCloser(bytes.NewReader(patch))
			out.ContentLength = int64(len(patch))
			out.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(patch)), nil }
			out.Header.Set("Content-Type", "application/merge-patch+json")
			return next.RoundTrip(out)
		})
	}
}

// HolderIdentity names this server, what it serves (a hash of version and
// entries, for whoever reads the lease) and this process (random per
// start), so that it changes at every start.
func HolderIdentity(serverID, version string, local map[string]peers.Entry) string {
	return holderIdentity(serverID, version, local, bootID())
}

func holderIdentity(serverID, version string, local map[string]peers.Entry, boot string) string {
	names := make([]string, 0, len(local))
	for name, e := range local {
		names = append(names, name+"="+e.EncodingVersion+";"+fmt.Sprint(e.ServedVersions))
	}
	slices.Sort(names)
	h := sha256.New()
	h.Write([]byte(version))
	for _, n := range names {
		h.Write([]byte{0})
		h.Write([]byte(n))
	}
	return serverID + "_" + hex.EncodeToString(h.Sum(nil))[:16] + "_" + boot
}

// PublishHolder sets this server's lease holder to holder once the server
// is ready and addressed (its peer address record written) (vanilla peers fetch its discovery at that change, and must find
// it complete), retrying until it is written or ctx ends. Unchanged, it
// writes nothing.
func PublishHolder(ctx context.Context, client kubernetes.Interface, serverID, holder string, addressed func() bool) {
	leases := client.CoordinationV1().Leases(metav1.NamespaceSystem)
	err := wait.PollUntilContextCancel(ctx, 200*time.Millisecond, true, func(ctx context.Context) (bool, error) {
		if err := client.Discovery().RESTClient().Get().AbsPath("/readyz").Do(ctx).Error(); err != nil || !addressed() {
			return false, nil
		}
		err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
			l, err := leases.Get(ctx, serverID, metav1.GetOptions{})
			if err != nil {
				return err
			}
			if l.Spec.HolderIdentity != nil && *l.Spec.HolderIdentity == holder {
				return nil
			}
			l.Spec.HolderIdentity = &holder
			_, err = leases.Update(ctx, l, metav1.UpdateOptions{})
			if err == nil {
				klog.InfoS("Identity lease holder names what this server serves; vanilla peers fetch its discovery again", "lease", serverID, "holder", holder)
			}
			return err
		})
		if apierrors.IsNotFound(err) {
			return false, nil // upstream's lease controller has not created it yet
		}
		if err != nil {
			klog.V(2).InfoS("Setting the identity lease holder; retrying", "lease", serverID, "err", err)
			return false, nil
		}
		return true, nil
	})
	if err != nil && ctx.Err() == nil {
		klog.ErrorS(err, "Setting the identity lease holder", "lease", serverID)
	}
}

// bootID tells this process's starts apart in the lease holder.
func bootID() string { return strings.ToLower(rand.Text()[:8]) }

// KeepAddressRecord wraps upstream's peer endpoint reconciler so that a
// stop leaves this server's peer address record (/peerserverleases/<id>)
// in storage until its TTL ends, instead of deleting it: vanilla peers
// resolve a peer by it for every request, so across a restart they keep
// reaching this server's address (503 while it is down, proxied as soon
// as it is up) rather than failing to resolve it until the new process,
// once ready, writes the same record again.
func KeepAddressRecord(r reconcilers.PeerEndpointLeaseReconciler) reconcilers.PeerEndpointLeaseReconciler {
	return keptAddressRecord{r}
}

type keptAddressRecord struct {
	reconcilers.PeerEndpointLeaseReconciler
}

// RemoveLease keeps the record; its TTL removes it if no process renews it.
func (keptAddressRecord) RemoveLease(string) error { return nil }

type roundTripperFunc func(*http.Request) (*http.Response, error)

func (f roundTripperFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }
