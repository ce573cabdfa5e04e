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

package peertable_test

import (
	"context"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes/fake"
	"k8s.io/client-go/tools/cache"
	clocktesting "k8s.io/utils/clock/testing"

	"github.com/mvp-apiserver/kube-apiserver/pkg/controlplane/peerproxy/peers/peerstest"
	"github.com/mvp-apiserver/kube-apiserver/pkg/controlplane/peerproxy/peertable"
)

// The table follows its informers: a live peer's StorageVersion entry
// makes it a route; the peer's stop, marked on its lease, takes the
// route away while the resource stays known.
func TestPeerTableFollowsLeasesAndStorageVersions(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	b := peerstest.Lease("b", "10.0.0.2:6443", 0)
	client := fake.NewClientset(peerstest.Lease("a", "10.0.0.1:6443", 0), b, peerstest.StorageVersion("batch.jobs", peerstest.Entry("b", "batch/v1")))
	cluster := informers.NewSharedInformerFactory(client, 0)
	leases := informers.NewSharedInformerFactoryWithOptions(client, 0, informers.WithNamespace(metav1.NamespaceSystem))
	table := peertable.New("a", 30*time.Second, peertable.Sources{
		Leases: leases.Coordination().V1().Leases(), StorageVersions: cluster.Internal().V1alpha1().StorageVersions(),
	}, clocktesting.NewFakeClock(peerstest.T0))
	cluster.Start(ctx.Done())
	leases.Start(ctx.Done())
	go table.Run(ctx, 1)

	routes := func() []string {
		var ids []string
		for _, p := range table.Snapshot().LivePeers(peerstest.JobsV1) {
			ids = append(ids, p.ID)
		}
		return ids
	}
	poll := func(what string, cond func() bool) {
		t.Helper()
		if wait.PollUntilContextTimeout(ctx, 20*time.Millisecond, 10*time.Second, true, func(context.Context) (bool, error) { return cond(), nil }) != nil {
			t.Fatalf("%s: never happened; routes %v", what, routes())
		}
	}
	poll("jobs routed to b", func() bool { return table.HasSynced() && len(routes()) == 1 && routes()[0] == "b" })

	stopped := peerstest.StoppedLease(b.DeepCopy(), -time.Second) // marked after its last renewal
	if _, err := client.CoordinationV1().Leases(metav1.NamespaceSystem).Update(ctx, stopped, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	poll("b no longer routed, jobs still known", func() bool { return len(routes()) == 0 && table.Snapshot().Known(peerstest.JobsV1) })
}

func TestServedVersionsOnlyKeepsWhatExtensionsRead(t *testing.T) {
	schema := &apiextensionsv1.CustomResourceValidation{OpenAPIV3Schema: &apiextensionsv1.JSONSchemaProps{Type: "object"}}
	crd := &apiextensionsv1.CustomResourceDefinition{
		ObjectMeta: metav1.ObjectMeta{Name: "widgets.example.com", ResourceVersion: "7", Annotations: map[string]string{"a": "b"},
			ManagedFields: []metav1.ManagedFieldsEntry{{Manager: "kubectl"}}},
		Spec: apiextensionsv1.CustomResourceDefinitionSpec{Group: "example.com", Versions: []apiextensionsv1.CustomResourceDefinitionVersion{
			{Name: "v1", Served: true, Storage: true, Schema: schema},
			{Name: "v1beta1", Served: false, Schema: schema},
		}},
	}
	got, err := peertable.ServedVersionsOnly(crd)
	if err != nil {
		t.Fatal(err)
	}
	want := &apiextensionsv1.CustomResourceDefinition{
		ObjectMeta: metav1.ObjectMeta{Name: "widgets.example.com", ResourceVersion: "7"},
		Spec: apiextensionsv1.CustomResourceDefinitionSpec{Group: "example.com", Versions: []apiextensionsv1.CustomResourceDefinitionVersion{
			{Name: "v1", Served: true}, {Name: "v1beta1"},
		}},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("transformed CRD (-want +got):\n%s", diff)
	}
	if crd.Spec.Versions[0].Schema == nil || crd.Annotations == nil {
		t.Errorf("the informer's input was modified")
	}
	tomb := cache.DeletedFinalStateUnknown{Key: "widgets.example.com", Obj: crd}
	if kept, _ := peertable.ServedVersionsOnly(tomb); kept != tomb {
		t.Errorf("a tombstone became %v", kept)
	}
}
