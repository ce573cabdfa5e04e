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
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
	"unsafe"

	apidiscoveryv2 "k8s.io/api/apidiscovery/v2"
	coordinationv1 "k8s.io/api/coordination/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/klog/v2"
	"k8s.io/kube-openapi/pkg/handler3"
	clocktesting "k8s.io/utils/clock/testing"

	"github.com/mvp-apiserver/kube-apiserver/pkg/controlplane/peerproxy/controller"
	"github.com/mvp-apiserver/kube-apiserver/pkg/controlplane/peerproxy/peerclient"
	"github.com/mvp-apiserver/kube-apiserver/pkg/controlplane/peerproxy/peers"
)

// docServer serves /api, /apis and /openapi/v3 like a kube-apiserver,
// with ETags and 304s, and counts full answers and requests of the root.
type docServer struct {
	apis        []apidiscoveryv2.APIGroupDiscovery
	contentType string
	full, roots int
}

func (s *docServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	var body []byte
	switch r.URL.Path {
	case rootAPI:
		body, _ = json.Marshal(apidiscoveryv2.APIGroupDiscoveryList{Items: doc("/v1:pods")})
	case rootAPIs:
		body, _ = json.Marshal(apidiscoveryv2.APIGroupDiscoveryList{Items: s.apis})
	case openAPIRoot:
		s.roots++
		body, _ = json.Marshal(handler3.OpenAPIV3Discovery{Paths: map[string]handler3.OpenAPIV3DiscoveryGroupVersion{
			"apis/batch/v1": {ServerRelativeURL: "/openapi/v3/apis/batch/v1?hash=AB"}}})
	default:
		http.NotFound(w, r)
		return
	}
	etag := `"` + string(rune('A'+len(body)%26)) + strings.Repeat("x", len(body)%7) + `"`
	w.Header().Set("ETag", etag)
	if r.Header.Get("If-None-Match") == etag {
		w.WriteHeader(http.StatusNotModified)
		return
	}
	s.full++
	ct := "application/json"
	if r.URL.Path != openAPIRoot {
		ct = s.contentType
	}
	w.Header().Set("Content-Type", ct)
	_, _ = w.Write(body)
}

func TestReadDocsIsConditional(t *testing.T) {
	srv := &docServer{apis: doc("batch/v1:jobs"), contentType: "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList"}
	get := inProcess(srv)
	ctx := context.Background()

	docs, changed, err := readDocs(ctx, get, nil, nil, nil)
	if err != nil || !changed {
		t.Fatalf("first read: changed=%t err=%v", changed, err)
	}
	if got := summary(docs.apis.groups); len(got) != 1 || got[0] != "batch/v1:jobs" {
		t.Errorf("/apis read as %v", got)
	}
	if docs.openAPI["apis/batch/v1"] != "/openapi/v3/apis/batch/v1?hash=AB" {
		t.Errorf("OpenAPI paths read as %v", docs.openAPI)
	}
	if srv.full != 3 {
		t.Errorf("first read: %d full answers, want 3", srv.full)
	}

	again, changed, err := readDocs(ctx, get, docs, nil, nil)
	if err != nil || changed {
		t.Fatalf("unchanged read: changed=%t err=%v", changed, err)
	}
	if srv.full != 3 {
		t.Errorf("unchanged read sent %d full answers, want none (304s)", srv.full-3)
	}
	if summary(again.apis.groups)[0] != "batch/v1:jobs" {
		t.Errorf("a 304 lost the data: %v", summary(again.apis.groups))
	}

	srv.apis = doc("batch/v1:cronjobs,jobs")
	next, changed, err := readDocs(ctx, get, again, nil, nil)
	if err != nil || !changed {
		t.Fatalf("changed read: changed=%t err=%v", changed, err)
	}
	if summary(next.apis.groups)[0] != "batch/v1:cronjobs,jobs" {
		t.Errorf("/apis read as %v", summary(next.apis.groups))
	}
}

func TestPeerRootIsReadWhenItsDiscoveryChanges(t *testing.T) {
	srv := &docServer{apis: doc("batch/v1:jobs"), contentType: "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList"}
	t0 := time.Unix(1_000_000, 0)
	var docs *serverDocs
	for _, step := range []struct {
		at        time.Duration
		change    bool
		wantRoots int
	}{
		{0, false, 1},                              // first read
		{10 * time.Second, false, 2},               // settling
		{40 * time.Second, false, 2},               // settled, nothing changed
		{4 * time.Minute, false, 2},                //
		{4*time.Minute + 10*time.Second, true, 3},  // /apis changed
		{4*time.Minute + 20*time.Second, false, 4}, // settling again
		{4*time.Minute + 55*time.Second, false, 4}, //
		{9*time.Minute + 21*time.Second, false, 5}, // five minutes since the last root read
	} {
		if step.change {
			srv.apis = doc("batch/v1:cronjobs,jobs")
		}
		next, _, err := readDocs(context.Background(), inProcess(srv), docs, nil, peerRootDue(t0.Add(step.at), nil))
		if err != nil {
			t.Fatal(err)
		}
		docs = next
		if srv.roots != step.wantRoots {
			t.Errorf("at %s: the root was requested %d times, want %d", step.at, srv.roots, step.wantRoots)
		}
	}
	if docs.openAPI["apis/batch/v1"] == "" {
		t.Errorf("the root's paths were lost: %v", docs.openAPI)
	}
}

func TestReadDocsRejectsUnaggregatedAnswers(t *testing.T) {
	srv := &docServer{apis: doc("batch/v1:jobs"), contentType: "application/json"}
	_, _, err := readDocs(context.Background(), inProcess(srv), nil, nil, nil)
	if err == nil || !strings.Contains(err.Error(), "not aggregated discovery v2") {
		t.Fatalf("want a bad-response error naming the format, got %v", err)
	}
	if f := peerclient.Classify(err); f.Kind != peerclient.KindBadResponse {
		t.Errorf("classified as %q, want %q", f.Kind, peerclient.KindBadResponse)
	}
}

func TestTrackExtensionsRemembersRemovals(t *testing.T) {
	crd := schema.GroupVersion{Group: "example.com", Version: "v1"}
	d := &Controller{removed: map[schema.GroupVersion]time.Time{}, cfg: Config{Retention: time.Minute}}
	d.trackExtensions(peers.BuildSnapshot(peers.SnapshotInputs{Self: "a", Now: t0, Extensions: map[schema.GroupVersion]bool{crd: true}}), t0)
	if len(d.removed) != 0 {
		t.Fatalf("nothing was removed yet: %v", d.removed)
	}
	d.trackExtensions(peers.BuildSnapshot(peers.SnapshotInputs{Self: "a", Now: t0}), t0.Add(time.Second))
	if at := d.removed[crd]; !at.Equal(t0.Add(time.Second)) {
		t.Fatalf("removal recorded at %v, want %v", at, t0.Add(time.Second))
	}
	// Forgotten once no retained document can predate it.
	d.trackExtensions(peers.BuildSnapshot(peers.SnapshotInputs{Self: "a", Now: t0}), t0.Add(2*time.Minute))
	if _, ok := d.removed[crd]; ok {
		t.Errorf("removal still remembered after the retention window")
	}
}

func TestForgetDeparted(t *testing.T) {
	d := &Controller{cfg: Config{Retention: time.Minute}, addresses: map[string]string{}, state: map[string]*PeerDocs{
		"live":     {docs: &serverDocs{fetchedAt: t0}},
		"departed": {docs: &serverDocs{fetchedAt: t0.Add(-2 * time.Minute)}},
		"recent":   {docs: &serverDocs{fetchedAt: t0.Add(-50 * time.Second)}},
		"unknown":  {docs: &serverDocs{fetchedAt: t0}},
	}}
	snap := peers.BuildSnapshot(peers.SnapshotInputs{Self: "a", Now: t0, LiveWindow: 30 * time.Second, Leases: []*coordinationv1.Lease{
		lease("live", "127.0.0.2:6443", 5*time.Second),
		lease("departed", "127.0.0.3:6443", 2*time.Minute),
		lease("recent", "127.0.0.4:6443", 50*time.Second),
	}})
	d.forgetDeparted(klog.Background(), snap, t0)
	for id, want := range map[string]bool{"live": true, "departed": false, "recent": true, "unknown": false} {
		if _, kept := d.state[id]; kept != want {
			t.Errorf("peer %s kept=%t, want %t", id, kept, want)
		}
	}
}

// A root whose ETag changes while its content does not is no change: the
// merge is not rebuilt for it.
func TestReadOpenAPIRootIgnoresANewETagOnTheSameContent(t *testing.T) {
	calls := 0
	srv := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls++
		w.Header().Set("ETag", fmt.Sprintf(`"%d"`, calls))
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"paths":{"apis/batch/v1":{"serverRelativeURL":"/openapi/v3/apis/batch/v1?hash=AB"}}}`)
	})
	docs := &serverDocs{}
	if changed, err := readOpenAPIRoot(context.Background(), inProcess(srv), docs); err != nil || !changed {
		t.Fatalf("first read: changed=%t err=%v", changed, err)
	}
	if changed, err := readOpenAPIRoot(context.Background(), inProcess(srv), docs); err != nil || changed {
		t.Errorf("same content under a new ETag: changed=%t err=%v", changed, err)
	}
	if docs.openAPIETag != `"2"` || docs.openAPI["apis/batch/v1"] == "" {
		t.Errorf("kept ETag %s and paths %v", docs.openAPIETag, docs.openAPI)
	}
}

// This server's documents are read at once when its extensions change,
// then in a short burst, then rarely.
func TestLocalReadsFollowExtensionChanges(t *testing.T) {
	table := &fakeTable{}
	d := NewController(Config{Self: "a", Table: table, Clock: clocktesting.NewFakeClock(t0), Publish: &Merged{}})
	t.Cleanup(func() {
		for _, q := range []controller.Queue[string]{d.peers, d.locals, d.merges} {
			q.ShutDown()
		}
	})
	crd := schema.GroupVersion{Group: "example.com", Version: "v1"}
	withCRD := peers.BuildSnapshot(peers.SnapshotInputs{Self: "a", Now: t0, Extensions: map[schema.GroupVersion]bool{crd: true}})

	queued := func() map[string]bool {
		out := map[string]bool{}
		for _, q := range []controller.Queue[string]{d.peers, d.locals, d.merges} {
			for q.Len() > 0 {
				k, _ := q.Get()
				out[k] = true
				q.Done(k)
			}
		}
		return out
	}
	// A table change queues a merge; the merge sees whether the
	// extensions changed.
	change := func(snap *peers.Snapshot) map[string]bool {
		table.snap.Store(snap)
		d.tableChanged(snap)
		if q := queued(); !q[keyMerge] {
			t.Fatalf("a table change queued %v, want a merge", q)
		}
		d.merge(klog.Background())
		return queued()
	}
	if q := change(withCRD); !q[keyLocal] {
		t.Fatalf("a new CRD queued %v, want a local read", q)
	}
	for i := range localBurstReads {
		if next := d.nextLocalRead(); next != localBurstInterval {
			t.Fatalf("read %d of the burst is due in %v, want %v", i, next, localBurstInterval)
		}
	}
	if next := d.nextLocalRead(); next != localRefresh {
		t.Errorf("after the burst the next read is due in %v, want %v", next, localRefresh)
	}
	if q := change(withCRD); q[keyLocal] { // a lease renewal: extensions unchanged
		t.Errorf("an unchanged table queued a local read: %v", q)
	}
	if q := change(peers.BuildSnapshot(peers.SnapshotInputs{Self: "a", Now: t0})); !q[keyLocal] {
		t.Errorf("a deleted CRD queued %v, want a local read", q)
	}
}

func TestReadDocsSharesWhatEqualsHeldDocuments(t *testing.T) {
	ct := "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList"
	ctx := context.Background()
	own, err := readDocsFrom(ctx, &docServer{apis: doc("batch/v1:jobs", "apps/v1:deployments"), contentType: ct}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	srv := &docServer{apis: doc("batch/v1:jobs", "apps/v1:deployments,replicasets"), contentType: ct}
	peer, err := readDocsFrom(ctx, srv, nil, own)
	if err != nil {
		t.Fatal(err)
	}
	if &peer.apis.groups[0].Versions[0] != &own.apis.groups[0].Versions[0] {
		t.Errorf("batch, listed alike, is held twice")
	}
	if &peer.apis.groups[1].Versions[0] == &own.apis.groups[1].Versions[0] {
		t.Errorf("apps, listed differently, shares the held versions")
	}
	if diff := summary(peer.apis.groups); diff[1] != "apps/v1:deployments,replicasets" {
		t.Errorf("the peer's own apps/v1 was lost: %v", diff)
	}
	if unsafe.StringData(peer.openAPI["apis/batch/v1"]) != unsafe.StringData(own.openAPI["apis/batch/v1"]) {
		t.Errorf("an equal OpenAPI URL is held twice")
	}

	srv.apis = doc("batch/v1:jobs", "apps/v1:deployments,replicasets", "example.com/v1:widgets")
	next, err := readDocsFrom(ctx, srv, peer, nil)
	if err != nil {
		t.Fatal(err)
	}
	if &next.apis.groups[1].Versions[0] != &peer.apis.groups[1].Versions[0] {
		t.Errorf("apps, unchanged since the previous read, is held twice")
	}
	if got := summary(next.apis.groups); len(got) != 3 || got[2] != "example.com/v1:widgets" {
		t.Errorf("/apis read as %v", got)
	}
}

// readDocsFrom reads srv's documents in-process, as a changed read.
func readDocsFrom(ctx context.Context, srv *docServer, prev, held *serverDocs) (*serverDocs, error) {
	docs, changed, err := readDocs(ctx, inProcess(srv), prev, held, nil)
	if err == nil && !changed {
		err = fmt.Errorf("the read found nothing changed")
	}
	return docs, err
}

func TestRootsAreReadOnlyWhenPeerOnlyPathsCanNeedThem(t *testing.T) {
	ct := "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList"
	ctx := context.Background()
	servedHere := func(gv schema.GroupVersion) bool { return gv.Group == "" || gv.Group == "batch" }

	peer := &docServer{apis: doc("batch/v1:jobs"), contentType: ct}
	docs, _, err := readDocs(ctx, inProcess(peer), nil, nil, peerRootDue(t0, servedHere))
	if err != nil {
		t.Fatal(err)
	}
	if peer.roots != 0 || docs.openAPI != nil {
		t.Errorf("a peer listing only what this server serves: its root was read %d times (paths %v), want never", peer.roots, docs.openAPI)
	}
	peer.apis = doc("batch/v1:jobs", "apps/v1:deployments")
	if docs, _, err = readDocs(ctx, inProcess(peer), docs, nil, peerRootDue(t0.Add(time.Second), servedHere)); err != nil {
		t.Fatal(err)
	}
	if peer.roots != 1 || docs.openAPI["apis/batch/v1"] == "" {
		t.Errorf("a peer listing apps/v1, which this server lacks: its root was read %d times (paths %v), want once", peer.roots, docs.openAPI)
	}

	own := &docServer{apis: doc("batch/v1:jobs"), contentType: ct}
	wanted := false
	local, _, err := readDocs(ctx, inProcess(own), nil, nil, localRootDue(func() bool { return wanted }))
	if err != nil {
		t.Fatal(err)
	}
	if own.roots != 0 || local.openAPI != nil {
		t.Errorf("no peer-only group/versions: this server's root was read %d times, want never", own.roots)
	}
	wanted = true
	if local, _, err = readDocs(ctx, inProcess(own), local, nil, localRootDue(func() bool { return wanted })); err != nil {
		t.Fatal(err)
	}
	if own.roots != 1 || local.openAPI["apis/batch/v1"] == "" {
		t.Errorf("peer-only group/versions: this server's root was read %d times (paths %v), want once", own.roots, local.openAPI)
	}
	wanted = false
	if local, _, err = readDocs(ctx, inProcess(own), local, nil, localRootDue(func() bool { return wanted })); err != nil {
		t.Fatal(err)
	}
	if own.roots != 1 || local.openAPI != nil {
		t.Errorf("no longer wanted: root reads %d (want still 1), paths %v (want none held)", own.roots, local.openAPI)
	}
}
