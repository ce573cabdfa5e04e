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

package proxy

import (
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	apiserverinternalv1alpha1 "k8s.io/api/apiserverinternal/v1alpha1"
	coordinationv1 "k8s.io/api/coordination/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/runtime/serializer"
	"k8s.io/apiserver/pkg/endpoints/request"
	utilflowcontrol "k8s.io/apiserver/pkg/util/flowcontrol"

	"github.com/mvp-apiserver/kube-apiserver/pkg/controlplane/peerproxy/peerclient"
	"github.com/mvp-apiserver/kube-apiserver/pkg/controlplane/peerproxy/peerclient/peerclienttest"
	"github.com/mvp-apiserver/kube-apiserver/pkg/controlplane/peerproxy/peers"
)

// testCodecs write metav1 objects (Status, APIGroupList, APIGroup) in
// JSON, YAML and protobuf, as the server's own serializer does.
func testCodecs() runtime.NegotiatedSerializer {
	s := runtime.NewScheme()
	metav1.AddToGroupVersion(s, schema.GroupVersion{Version: "v1"})
	return serializer.NewCodecFactory(s)
}

// routeFixture is the proxy filter with a real forwarder in front of a
// handler that counts what is served here.
type routeFixture struct {
	*proxyFixture
	table *fakeTable
	fw    *Forwarder
	h     http.Handler
	local int
}

// fakeTable is a peer table whose snapshot the test sets.
type fakeTable struct {
	snap atomic.Pointer[peers.Snapshot]
}

func (f *fakeTable) Snapshot() *peers.Snapshot { return f.snap.Load() }

func newRouteFixture(t *testing.T, snap *peers.Snapshot) *routeFixture {
	fx := &routeFixture{proxyFixture: newProxyFixture(t)}
	fx.table = &fakeTable{}
	fx.table.snap.Store(snap)
	fx.fw = newForwarder(fx.f, peerclienttest.KubeadmHeaders, testCodecs())
	fx.h = WithPeerProxy(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { fx.local++ }), fx.table, fx.fw)
	return fx
}

// jobsSnapshot: this server ("a") serves pods; peers serve batch/v1 jobs.
// A peer not live has a lease an hour old.
func jobsSnapshot(ps ...*peers.Peer) *peers.Snapshot {
	leases := []*coordinationv1.Lease{lease("a", "a:1", 0)}
	var entries []peers.Entry
	for _, p := range ps {
		ago := time.Duration(0)
		if !p.Live {
			ago = time.Hour
		}
		leases = append(leases, lease(p.ID, p.Address, ago))
		entries = append(entries, entry(p.ID, "batch/v1"))
	}
	return peers.BuildSnapshot(peers.SnapshotInputs{
		Self: "a", Now: t0, LiveWindow: 30 * time.Second, Leases: leases,
		StorageVersions: []*apiserverinternalv1alpha1.StorageVersion{sv("batch.jobs", entries...)},
		Local:           map[schema.GroupVersionResource]bool{podsV1: true},
	})
}

// jobsRequest is alice's GET of the jobs in namespace x.
func jobsRequest(header http.Header) *http.Request {
	r := httptest.NewRequest(http.MethodGet, "https://a/apis/batch/v1/namespaces/x/jobs", nil)
	for k, v := range header {
		r.Header.Set(k, v[0])
	}
	ctx := request.WithRequestInfo(r.Context(), &request.RequestInfo{IsResourceRequest: true, APIGroup: "batch", APIVersion: "v1", Resource: "jobs", Namespace: "x", Verb: "list"})
	return r.WithContext(request.WithUser(ctx, alice))
}

func TestFilterProxiesWhatOnlyAPeerServes(t *testing.T) {
	fx := newRouteFixture(t, nil)
	var got http.Header
	b := fx.peer(t, "b", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got = r.Header.Clone()
		io.WriteString(w, `{"kind":"JobList"}`)
	}))
	fx.table.snap.Store(jobsSnapshot(b))

	rec := httptest.NewRecorder()
	fx.h.ServeHTTP(rec, jobsRequest(nil))
	if rec.Code != http.StatusOK || rec.Body.String() != `{"kind":"JobList"}` || fx.local != 0 {
		t.Fatalf("answer %d %q, served here %d times; want the peer's 200", rec.Code, rec.Body.String(), fx.local)
	}
	if got.Get("X-Remote-User") != "alice" || got.Get(peerclient.HeaderRerouted) != "true" {
		t.Errorf("the peer got user %q, %s %q", got.Get("X-Remote-User"), peerclient.HeaderRerouted, got.Get(peerclient.HeaderRerouted))
	}

	// A request a peer already forwarded is served here, never again proxied.
	rec = httptest.NewRecorder()
	fx.h.ServeHTTP(rec, jobsRequest(http.Header{peerclient.HeaderRerouted: {"true"}}))
	if fx.local != 1 {
		t.Errorf("a rerouted request was not served here (served here %d times)", fx.local)
	}
}

func TestFilterUnavailableWhenNoServerIsLive(t *testing.T) {
	fx := newRouteFixture(t, jobsSnapshot(&peers.Peer{ID: "d", Address: "127.0.0.9:6443"}))
	rec := httptest.NewRecorder()
	fx.h.ServeHTTP(rec, jobsRequest(nil))
	if rec.Code != http.StatusServiceUnavailable || fx.local != 0 {
		t.Fatalf("answer %d, served here %d times; want 503 from the filter", rec.Code, fx.local)
	}
	if ra := rec.Header().Get("Retry-After"); ra != "5" {
		t.Errorf("Retry-After %q, want 5", ra)
	}
	st := readStatus(t, rec)
	want := "batch/v1/jobs is served in this cluster, but by no live kube-apiserver (registered by d); retry later"
	if st.Message != want || st.Reason != metav1.StatusReasonServiceUnavailable || st.Details == nil || st.Details.RetryAfterSeconds != 5 {
		t.Errorf("Status %+v, want message %q, reason ServiceUnavailable, retryAfterSeconds 5", st, want)
	}
}

// When every capable peer fails, the 503 says why and whom it tried, in
// the format the client negotiated. It names peers by ID only: their
// addresses are in /debug/peerproxy, not in what any caller can read.
func TestForwarderFailedSaysWhyAndWhom(t *testing.T) {
	fx := newRouteFixture(t, nil)
	b, c := deadPeer(t, "b"), deadPeer(t, "c")
	fx.table.snap.Store(jobsSnapshot(b, c))
	rec := httptest.NewRecorder()
	fx.h.ServeHTTP(rec, jobsRequest(nil))
	if rec.Code != http.StatusServiceUnavailable || rec.Header().Get("Retry-After") != "2" {
		t.Fatalf("answer %d, Retry-After %q; want 503, 2", rec.Code, rec.Header().Get("Retry-After"))
	}
	st := readStatus(t, rec)
	for _, part := range []string{
		"batch/v1/jobs is not served by this kube-apiserver and no peer could serve it",
		"tried 2 of 2 capable peers: ", "b: the peer is unreachable", "c: the peer is unreachable", "/debug/peerproxy",
	} {
		if !strings.Contains(st.Message, part) {
			t.Errorf("message %q lacks %q", st.Message, part)
		}
	}
	for _, p := range []*peers.Peer{b, c} {
		host, _, _ := net.SplitHostPort(p.Address)
		if strings.Contains(rec.Body.String(), host) {
			t.Errorf("the 503 names peer %s's address %s: %q", p.ID, host, rec.Body.String())
		}
		if _, lastErr, _ := fx.f.health.State(p.ID); !strings.Contains(lastErr, p.Address) {
			t.Errorf("peer %s's last error %q does not name its address %s for /debug/peerproxy", p.ID, lastErr, p.Address)
		}
	}

	rec = httptest.NewRecorder()
	fx.h.ServeHTTP(rec, jobsRequest(http.Header{"Accept": {"application/yaml"}}))
	if ct := rec.Header().Get("Content-Type"); ct != "application/yaml" || !strings.Contains(rec.Body.String(), "reason: ServiceUnavailable") {
		t.Errorf("a YAML client got %q: %q", ct, rec.Body.String())
	}
}

// A peer whose serving certificate --peer-ca-file does not trust is named
// as such, not as unreachable.
func TestForwarderFailedNamesAnUntrustedPeer(t *testing.T) {
	fx := newRouteFixture(t, nil)
	stranger := httptest.NewTLSServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	t.Cleanup(stranger.Close)
	fx.table.snap.Store(jobsSnapshot(&peers.Peer{ID: "b", Address: stranger.Listener.Addr().String(), Live: true}))
	rec := httptest.NewRecorder()
	fx.h.ServeHTTP(rec, jobsRequest(nil))
	if st := readStatus(t, rec); rec.Code != http.StatusServiceUnavailable || !strings.Contains(st.Message, "the peer's certificate is not trusted by --peer-ca-file") {
		t.Errorf("answer %d %q; want 503 naming --peer-ca-file", rec.Code, st.Message)
	}
}

// A watch is relayed through the small watch buffers: events larger than
// the buffer arrive whole, each as the peer sends it; and this server's
// priority and fairness is told at once that the watch is not its own.
func TestFilterRelaysAWatchThroughSmallBuffers(t *testing.T) {
	fx := newRouteFixture(t, nil)
	big := `{"type":"ADDED","object":{"kind":"Job","metadata":{"name":"` + strings.Repeat("x", 20<<10) + `"}}}` + "\n"
	next := make(chan struct{})
	b := fx.peer(t, "b", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, big)
		w.(http.Flusher).Flush()
		<-next // the second event only once the first was read
		io.WriteString(w, `{"type":"DELETED"}`+"\n")
	}))
	fx.table.snap.Store(jobsSnapshot(b))
	// Priority and fairness hold a watch's seat until it is reported set up.
	initialized := utilflowcontrol.NewInitializationSignal()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx := request.WithRequestInfo(r.Context(), &request.RequestInfo{IsResourceRequest: true, APIGroup: "batch", APIVersion: "v1", Resource: "jobs", Verb: "watch"})
		ctx = utilflowcontrol.WithInitializationSignal(ctx, initialized)
		fx.h.ServeHTTP(w, r.WithContext(request.WithUser(ctx, alice)))
	}))
	t.Cleanup(srv.Close)
	resp, err := http.Get(srv.URL + "/apis/batch/v1/jobs?watch=1")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	first := make([]byte, len(big))
	if _, err := io.ReadFull(resp.Body, first); err != nil || string(first) != big {
		t.Fatalf("first event: %v (%d bytes)", err, len(first))
	}
	released := make(chan struct{})
	go func() { initialized.Wait(); close(released) }()
	select {
	case <-released:
	case <-time.After(10 * time.Second):
		t.Fatal("the relayed watch never released its priority-and-fairness seat")
	}
	close(next)
	rest, err := io.ReadAll(resp.Body)
	if err != nil || string(rest) != `{"type":"DELETED"}`+"\n" {
		t.Errorf("second event %q, %v", rest, err)
	}
}

// readStatus decodes a JSON Status answer.
func readStatus(t *testing.T, rec *httptest.ResponseRecorder) metav1.Status {
	t.Helper()
	var st metav1.Status
	if err := json.Unmarshal(rec.Body.Bytes(), &st); err != nil {
		t.Fatalf("answer is not a JSON Status (%s): %v: %q", rec.Header().Get("Content-Type"), err, rec.Body.String())
	}
	return st
}
