package peerproxy

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"k8s.io/apiserver/pkg/endpoints/request"
)

// localFixture is both filters, chained as the command chains them, in
// front of a handler that serves every request here, with routerSnapshot's
// table: the request asks for pods, which this server serves.
type localFixture struct {
	f      http.Handler
	served int
	w      http.ResponseWriter
	r      *http.Request
}

func newLocalFixture() *localFixture {
	fx := &localFixture{}
	table := &PeerTable{}
	table.current.Store(routerSnapshot(true))
	fx.f = &mergedDiscoveryFilter{
		merged: &MergedDiscovery{},
		next: &peerProxyFilter{
			next:  http.HandlerFunc(func(http.ResponseWriter, *http.Request) { fx.served++ }),
			table: table,
		},
	}
	r := httptest.NewRequest(http.MethodGet, "/api/v1/namespaces/default/pods/web", nil)
	fx.r = r.WithContext(request.WithRequestInfo(r.Context(), resourceInfo("", "v1", "pods", "")))
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
