package peerproxy

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	apidiscoveryv2 "k8s.io/api/apidiscovery/v2"
	coordinationv1 "k8s.io/api/coordination/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/kube-openapi/pkg/handler3"
	clocktesting "k8s.io/utils/clock/testing"
)

// docServer serves /api, /apis and /openapi/v3 like a kube-apiserver,
// with ETags and 304s, and counts full answers.
type docServer struct {
	apis        []apidiscoveryv2.APIGroupDiscovery
	contentType string
	full        int
}

func (s *docServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	var body []byte
	switch r.URL.Path {
	case rootAPI:
		body, _ = json.Marshal(apidiscoveryv2.APIGroupDiscoveryList{Items: doc("/v1:pods")})
	case rootAPIs:
		body, _ = json.Marshal(apidiscoveryv2.APIGroupDiscoveryList{Items: s.apis})
	case openAPIRoot:
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

	docs, changed, err := readDocs(ctx, get, nil)
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

	again, changed, err := readDocs(ctx, get, docs)
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
	next, changed, err := readDocs(ctx, get, again)
	if err != nil || !changed {
		t.Fatalf("changed read: changed=%t err=%v", changed, err)
	}
	if summary(next.apis.groups)[0] != "batch/v1:cronjobs,jobs" {
		t.Errorf("/apis read as %v", summary(next.apis.groups))
	}
}

func TestReadDocsRejectsUnaggregatedAnswers(t *testing.T) {
	srv := &docServer{apis: doc("batch/v1:jobs"), contentType: "application/json"}
	_, _, err := readDocs(context.Background(), inProcess(srv), nil)
	var bad *badResponseError
	if !errors.As(err, &bad) || !strings.Contains(err.Error(), "not aggregated discovery v2") {
		t.Fatalf("want a bad-response error naming the format, got %v", err)
	}
	if f := classify(err); f.kind != errBadResponse {
		t.Errorf("classified as %q, want %q", f.kind, errBadResponse)
	}
}

func TestTrackExtensionsRemembersRemovals(t *testing.T) {
	crd := schema.GroupVersion{Group: "example.com", Version: "v1"}
	d := &PeerDiscovery{removed: map[schema.GroupVersion]time.Time{}, cfg: DiscoveryConfig{Retention: time.Minute}}
	d.trackExtensions(BuildSnapshot(SnapshotInputs{Self: "a", Now: t0, Extensions: map[schema.GroupVersion]bool{crd: true}}), t0)
	if len(d.removed) != 0 {
		t.Fatalf("nothing was removed yet: %v", d.removed)
	}
	d.trackExtensions(BuildSnapshot(SnapshotInputs{Self: "a", Now: t0}), t0.Add(time.Second))
	if at := d.removed[crd]; !at.Equal(t0.Add(time.Second)) {
		t.Fatalf("removal recorded at %v, want %v", at, t0.Add(time.Second))
	}
	// Forgotten once no retained document can predate it.
	d.trackExtensions(BuildSnapshot(SnapshotInputs{Self: "a", Now: t0}), t0.Add(2*time.Minute))
	if _, ok := d.removed[crd]; ok {
		t.Errorf("removal still remembered after the retention window")
	}
}

func TestForgetDeparted(t *testing.T) {
	d := &PeerDiscovery{cfg: DiscoveryConfig{Retention: time.Minute}, addresses: map[string]string{}, state: map[string]*PeerDocs{
		"live":     {docs: &serverDocs{fetchedAt: t0}},
		"departed": {docs: &serverDocs{fetchedAt: t0.Add(-2 * time.Minute)}},
		"recent":   {docs: &serverDocs{fetchedAt: t0.Add(-50 * time.Second)}},
		"unknown":  {docs: &serverDocs{fetchedAt: t0}},
	}}
	snap := BuildSnapshot(SnapshotInputs{Self: "a", Now: t0, LiveWindow: 30 * time.Second, Leases: []*coordinationv1.Lease{
		lease("live", "127.0.0.2:6443", 5*time.Second),
		lease("departed", "127.0.0.3:6443", 2*time.Minute),
		lease("recent", "127.0.0.4:6443", 50*time.Second),
	}})
	d.forgetDeparted(snap, t0)
	for id, want := range map[string]bool{"live": true, "departed": false, "recent": true, "unknown": false} {
		if _, kept := d.state[id]; kept != want {
			t.Errorf("peer %s kept=%t, want %t", id, kept, want)
		}
	}
}

// Discovery feeds the router: a resource without storage that only a peer
// lists routes to that peer; extensions never do.
func TestBuildSnapshotUsesDiscoveredResources(t *testing.T) {
	reviews := schema.GroupVersionResource{Group: "authentication.k8s.io", Version: "v1beta1", Resource: "selfsubjectreviews"}
	widgets := schema.GroupVersionResource{Group: "example.com", Version: "v1", Resource: "widgets"}
	snap := BuildSnapshot(SnapshotInputs{
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
	route := Decide(resourceInfo(reviews.Group, reviews.Version, reviews.Resource, ""), false, snap)
	if route.Decision != Proxy {
		t.Errorf("Decide(selfsubjectreviews) = %v, want proxy", route.Decision)
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
	table := &PeerTable{}
	d := NewPeerDiscovery(DiscoveryConfig{Self: "a", Table: table, Clock: clocktesting.NewFakeClock(t0), Publish: &MergedDiscovery{}})
	t.Cleanup(d.queue.ShutDown)
	crd := schema.GroupVersion{Group: "example.com", Version: "v1"}
	withCRD := BuildSnapshot(SnapshotInputs{Self: "a", Now: t0, Extensions: map[schema.GroupVersion]bool{crd: true}})

	queued := func() map[string]bool {
		out := map[string]bool{}
		for d.queue.Len() > 0 {
			k, _ := d.queue.Get()
			out[k] = true
			d.queue.Done(k)
		}
		return out
	}
	// A table change queues a merge; the merge sees whether the
	// extensions changed.
	change := func(snap *Snapshot) map[string]bool {
		table.current.Store(snap)
		d.tableChanged(snap)
		if q := queued(); !q[keyMerge] {
			t.Fatalf("a table change queued %v, want a merge", q)
		}
		d.merge()
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
	if q := change(BuildSnapshot(SnapshotInputs{Self: "a", Now: t0})); !q[keyLocal] {
		t.Errorf("a deleted CRD queued %v, want a local read", q)
	}
}
