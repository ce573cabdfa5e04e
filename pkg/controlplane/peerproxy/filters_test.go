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

package peerproxy

import (
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apiserver/pkg/endpoints/request"

	"github.com/mvp-apiserver/kube-apiserver/pkg/controlplane/peerproxy/discovery"
	"github.com/mvp-apiserver/kube-apiserver/pkg/controlplane/peerproxy/peers"
	"github.com/mvp-apiserver/kube-apiserver/pkg/controlplane/peerproxy/proxy"
)

// localFixture is both filters, chained as Install chains them, in front
// of a handler that serves every request here; the request asks for pods,
// which this server serves.
type localFixture struct {
	f      http.Handler
	served int
	w      http.ResponseWriter
	r      *http.Request
}

// staticTable is a peer table that never changes.
type staticTable struct{ snap *peers.Snapshot }

func (t staticTable) Snapshot() *peers.Snapshot { return t.snap }

func newLocalFixture() *localFixture {
	fx := &localFixture{}
	pods := schema.GroupVersionResource{Version: "v1", Resource: "pods"}
	table := staticTable{peers.BuildSnapshot(peers.SnapshotInputs{Self: "a", Now: time.Now(), Local: map[schema.GroupVersionResource]bool{pods: true}})}
	var fw *proxy.Forwarder // the local path never forwards
	next := http.HandlerFunc(func(http.ResponseWriter, *http.Request) { fx.served++ })
	fx.f = discovery.WithMergedDiscovery(proxy.WithPeerProxy(next, table, fw), &discovery.Merged{}, fw, nil)
	r := httptest.NewRequest(http.MethodGet, "/api/v1/namespaces/default/pods/web", nil)
	info := &request.RequestInfo{IsResourceRequest: true, Verb: "get", APIVersion: "v1", Resource: "pods", Namespace: "default", Name: "web"}
	fx.r = r.WithContext(request.WithRequestInfo(r.Context(), info))
	fx.w = httptest.NewRecorder()
	return fx
}

// The local path is on every request a server answers itself: it must not
// allocate, and it must hand the request on untouched.
func TestFilterLocalPathAllocatesNothing(t *testing.T) {
	fx := newLocalFixture()
	allocs := testing.AllocsPerRun(1000, func() { fx.f.ServeHTTP(fx.w, fx.r) })
	if allocs != 0 {
		t.Errorf("local path: %.1f allocations per request, want 0", allocs)
	}
	if fx.served != 1001 { // AllocsPerRun runs once more to warm up
		t.Errorf("next handler ran %d times, want 1001", fx.served)
	}
}

// BenchmarkFilterLocal is the filter's cost on a request served here
// (make bench reports it as filter_local_ns_op and filter_local_allocs_op).
func BenchmarkFilterLocal(b *testing.B) {
	fx := newLocalFixture()
	b.ReportAllocs()
	for b.Loop() {
		fx.f.ServeHTTP(fx.w, fx.r)
	}
	if fx.served == 0 {
		b.Fatal("the request never reached the next handler")
	}
}
