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

package discovery

import (
	"context"
	"encoding/json"
	"net/http"
	"slices"
	"testing"
	"time"

	apidiscoveryv2 "k8s.io/api/apidiscovery/v2"
	coordinationv1 "k8s.io/api/coordination/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/utils/clock"

	"github.com/mvp-apiserver/kube-apiserver/pkg/controlplane/peerproxy/peerclient"
	"github.com/mvp-apiserver/kube-apiserver/pkg/controlplane/peerproxy/peerclient/peerclienttest"
	"github.com/mvp-apiserver/kube-apiserver/pkg/controlplane/peerproxy/peers"
)

// staticDocs serves /api and /apis (apis) as aggregated discovery, and no
// OpenAPI v3.
func staticDocs(apis []apidiscoveryv2.APIGroupDiscovery) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		groups := apis
		switch r.URL.Path {
		case rootAPI:
			groups = doc("/v1:pods")
		case rootAPIs:
		default:
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList")
		_ = json.NewEncoder(w).Encode(apidiscoveryv2.APIGroupDiscoveryList{Items: groups})
	})
}

// The controller's loop reads this server's documents and a live peer's
// over TLS, publishes the merge, hands the table what only the peer
// serves, and is then ready.
func TestControllerMergesALivePeer(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	pki := peerclienttest.NewPKI(t)
	tr, err := peerclient.New(peerclienttest.Config(pki))
	if err != nil {
		t.Fatal(err)
	}
	b := peerclienttest.StartPeer(t, pki, "b", staticDocs(doc("apps/v1:deployments", "batch/v1:jobs")))
	table := &fakeTable{}
	table.snap.Store(peers.BuildSnapshot(peers.SnapshotInputs{Self: "a", Now: t0, LiveWindow: 30 * time.Second,
		Leases: []*coordinationv1.Lease{lease("a", "127.0.0.1:1", 0), lease("b", b, 0)},
		Local:  map[schema.GroupVersionResource]bool{deployV1: true}}))
	merged := &Merged{}
	d := NewController(Config{Self: "a", Table: table, Local: staticDocs(doc("apps/v1:deployments")), Peers: tr.ForDiscovery(),
		UserHeader: peerclienttest.KubeadmHeaders.UserHeader(), Retention: time.Minute, Clock: clock.RealClock{}, Publish: merged})
	go d.Run(ctx, 2)

	batch := schema.GroupVersion{Group: "batch", Version: "v1"}
	err = wait.PollUntilContextTimeout(ctx, 20*time.Millisecond, 10*time.Second, true, func(context.Context) (bool, error) {
		ds := merged.Snapshot()
		return d.Ready() && ds != nil && ds.Merged(batch) && len(ds.PeersFor(batch)) == 1, nil
	})
	if err != nil {
		t.Fatalf("batch/v1 never merged from b: ready %t, snapshot %v", d.Ready(), merged.Snapshot())
	}
	if ps := merged.Snapshot().PeersFor(batch); ps[0].ID != "b" {
		t.Errorf("batch/v1 documents go to %s, want b", ps[0].ID)
	}
	got := table.discovered.Load()
	if got == nil || !slices.Contains((*got)["b"], jobsV1) || len((*got)["b"]) != 3 {
		t.Errorf("the table was handed %v, want b's three resources, batch/v1 jobs among them", got)
	}
}
