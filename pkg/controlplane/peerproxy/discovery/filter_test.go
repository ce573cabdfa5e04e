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
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	apidiscoveryv2 "k8s.io/api/apidiscovery/v2"
	coordinationv1 "k8s.io/api/coordination/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apiserver/pkg/endpoints/request"
	"k8s.io/kube-openapi/pkg/handler3"
	"k8s.io/utils/clock"

	"github.com/mvp-apiserver/kube-apiserver/pkg/controlplane/peerproxy/peerclient"
	"github.com/mvp-apiserver/kube-apiserver/pkg/controlplane/peerproxy/peerclient/peerclienttest"
	"github.com/mvp-apiserver/kube-apiserver/pkg/controlplane/peerproxy/peers"
	"github.com/mvp-apiserver/kube-apiserver/pkg/controlplane/peerproxy/proxy"
)

const acceptAggregated = "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList"

// discoveryFixture is the merged-discovery filter with a real forwarder,
// over merged discovery in which this server ("a") serves apps/v1, the
// live peer "b" (a TLS httptest server) also serves batch/v1, and the
// departed peer "d" served storagemigration.k8s.io/v1.
type discoveryFixture struct {
	h        http.Handler
	merged   *Snapshot
	local    int    // requests handed to the next handler
	peerPath string // what b was last asked for
}

func newDiscoveryFixture(t *testing.T) *discoveryFixture {
	fx := &discoveryFixture{}
	pki := peerclienttest.NewPKI(t)
	tr, err := peerclient.New(peerclienttest.Config(pki))
	if err != nil {
		t.Fatal(err)
	}
	b := peerclienttest.StartPeer(t, pki, "b", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fx.peerPath = r.URL.Path
		_, _ = w.Write([]byte("from b"))
	}))
	in := discoveryInputs([]string{"apps/v1:deployments"}, map[string]testPeer{
		"b": {live: true, apis: []string{"apps/v1:deployments", "batch/v1:jobs"}},
		"d": {apis: []string{"storagemigration.k8s.io/v1:storageversionmigrations"}},
	})
	in.Table = peers.BuildSnapshot(peers.SnapshotInputs{Self: "a", Now: t0, LiveWindow: 30 * time.Second, Leases: []*coordinationv1.Lease{
		lease("a", "a:6443", 0), lease("b", b, 0), lease("d", "d:6443", time.Hour)}})
	fx.merged, _ = Build(in)
	md := &Merged{}
	md.current.Store(fx.merged)
	fx.h = &mergedDiscoveryFilter{
		next:       http.HandlerFunc(func(http.ResponseWriter, *http.Request) { fx.local++ }),
		merged:     md,
		forward:    proxy.NewForwarder(tr, proxy.NewHealth(clock.RealClock{}), peerclienttest.KubeadmHeaders, testCodecs()),
		codecs:     newDiscoveryCodecs(),
		serializer: testCodecs(),
	}
	return fx
}

// get sends a non-resource GET for path as alice.
func (fx *discoveryFixture) get(path string, header http.Header) *httptest.ResponseRecorder {
	r := httptest.NewRequest(http.MethodGet, "https://a"+path, nil)
	for k, v := range header {
		r.Header.Set(k, v[0])
	}
	ctx := request.WithRequestInfo(r.Context(), &request.RequestInfo{IsResourceRequest: false, Path: path, Verb: "get"})
	rec := httptest.NewRecorder()
	fx.h.ServeHTTP(rec, r.WithContext(request.WithUser(ctx, peerclienttest.Alice)))
	return rec
}

func TestDiscoveryFilterServesMergedRoots(t *testing.T) {
	fx := newDiscoveryFixture(t)
	rec := fx.get("/apis", http.Header{"Accept": {acceptAggregated}})
	var list apidiscoveryv2.APIGroupDiscoveryList
	if err := json.Unmarshal(rec.Body.Bytes(), &list); err != nil || rec.Code != http.StatusOK {
		t.Fatalf("/apis: %d %v", rec.Code, err)
	}
	if got := strings.Join(summary(list.Items), " "); got != "storagemigration.k8s.io/v1!:storageversionmigrations apps/v1:deployments batch/v1:jobs" {
		t.Errorf("/apis lists %s", got)
	}
	etag := rec.Header().Get("ETag")
	if etag == "" || !strings.Contains(etag, fx.merged.APIsETag) {
		t.Errorf("ETag %q, want the merged document's %q", etag, fx.merged.APIsETag)
	}
	if rec := fx.get("/apis", http.Header{"Accept": {acceptAggregated}, "If-None-Match": {etag}}); rec.Code != http.StatusNotModified {
		t.Errorf("a conditional /apis answered %d, want 304", rec.Code)
	}

	// Unaggregated clients get the merged group list.
	rec = fx.get("/apis", http.Header{"Accept": {"application/json"}})
	var groups metav1.APIGroupList
	if err := json.Unmarshal(rec.Body.Bytes(), &groups); err != nil || len(groups.Groups) != 3 || groups.Groups[2].Name != "batch" {
		t.Errorf("unaggregated /apis: %v %+v", err, groups)
	}
	if fx.local != 0 {
		t.Errorf("%d merged answers went to the next handler", fx.local)
	}
}

func TestDiscoveryFilterLeavesLocalViewsAlone(t *testing.T) {
	fx := newDiscoveryFixture(t)
	for _, tc := range []struct {
		why, path string
		header    http.Header
	}{
		{"peers ask for a server's own view", "/apis", http.Header{"Accept": {acceptAggregated + ";profile=nopeer"}}},
		{"the legacy version list is the same everywhere", "/api", http.Header{"Accept": {"application/json"}}},
		{"this server serves the group's versions itself", "/apis/apps", nil},
		{"this server serves the group/version itself", "/apis/apps/v1", nil},
		{"a request a peer forwarded", "/apis/batch/v1", http.Header{peerclient.HeaderRerouted: {"true"}}},
		{"not a discovery path", "/healthz", nil},
	} {
		before := fx.local
		if rec := fx.get(tc.path, tc.header); fx.local != before+1 {
			t.Errorf("%s (%s): answered %d here instead of passing it on", tc.why, tc.path, rec.Code)
		}
	}
	// A resource request is never discovery's.
	r := httptest.NewRequest(http.MethodGet, "https://a/apis/batch/v1", nil)
	r = r.WithContext(request.WithRequestInfo(r.Context(), &request.RequestInfo{IsResourceRequest: true}))
	before := fx.local
	fx.h.ServeHTTP(httptest.NewRecorder(), r)
	if fx.local != before+1 {
		t.Errorf("a resource request was answered by the discovery filter")
	}
}

func TestDiscoveryFilterServesGroupsOnlyPeersComplete(t *testing.T) {
	fx := newDiscoveryFixture(t)
	rec := fx.get("/apis/batch", nil)
	var g metav1.APIGroup
	if err := json.Unmarshal(rec.Body.Bytes(), &g); err != nil || g.Name != "batch" || len(g.Versions) != 1 || g.PreferredVersion.GroupVersion != "batch/v1" {
		t.Errorf("/apis/batch: %d %v %+v", rec.Code, err, g)
	}
}

func TestDiscoveryFilterForwardsPeerOnlyDocuments(t *testing.T) {
	fx := newDiscoveryFixture(t)
	for _, path := range []string{"/apis/batch/v1", "/openapi/v3/apis/batch/v1"} {
		rec := fx.get(path, nil)
		if rec.Code != http.StatusOK || rec.Body.String() != "from b" || fx.peerPath != path {
			t.Errorf("%s: %d %q, peer asked for %q; want b's answer", path, rec.Code, rec.Body.String(), fx.peerPath)
		}
	}
	// Known to the cluster, served by no live server: 503, never 404.
	rec := fx.get("/apis/storagemigration.k8s.io/v1", nil)
	if rec.Code != http.StatusServiceUnavailable || rec.Header().Get("Retry-After") != "5" {
		t.Fatalf("a group/version only a departed peer served: %d, Retry-After %q", rec.Code, rec.Header().Get("Retry-After"))
	}
	if st := readStatus(t, rec); !strings.Contains(st.Message, "storagemigration.k8s.io/v1 is served in this cluster, but by no live kube-apiserver") {
		t.Errorf("message %q", st.Message)
	}
	if fx.local != 0 {
		t.Errorf("%d requests went to the next handler", fx.local)
	}
}

func TestDiscoveryFilterServesTheMergedOpenAPIRoot(t *testing.T) {
	fx := newDiscoveryFixture(t)
	rec := fx.get("/openapi/v3", nil)
	var root handler3.OpenAPIV3Discovery
	if err := json.Unmarshal(rec.Body.Bytes(), &root); err != nil || rec.Code != http.StatusOK {
		t.Fatalf("/openapi/v3: %d %v", rec.Code, err)
	}
	if root.Paths["apis/batch/v1"].ServerRelativeURL != "/openapi/v3/apis/batch/v1?hash=b" || root.Paths["api/v1"].ServerRelativeURL != "/openapi/v3/api/v1?hash=L" {
		t.Errorf("merged root %+v", root.Paths)
	}
	if rec.Header().Get("ETag") != fx.merged.OpenAPIRootETag {
		t.Errorf("ETag %q, want %q", rec.Header().Get("ETag"), fx.merged.OpenAPIRootETag)
	}
	if rec := fx.get("/openapi/v3", http.Header{"If-None-Match": {fx.merged.OpenAPIRootETag}}); rec.Code != http.StatusNotModified || rec.Body.Len() != 0 {
		t.Errorf("a conditional root answered %d with %d bytes, want an empty 304", rec.Code, rec.Body.Len())
	}
}

// Before the first merge every request goes through untouched.
func TestDiscoveryFilterBeforeTheFirstMerge(t *testing.T) {
	served := 0
	h := &mergedDiscoveryFilter{next: http.HandlerFunc(func(http.ResponseWriter, *http.Request) { served++ }), merged: &Merged{}}
	r := httptest.NewRequest(http.MethodGet, "https://a/apis", nil)
	r.Header.Set("Accept", acceptAggregated)
	h.ServeHTTP(httptest.NewRecorder(), r)
	if served != 1 {
		t.Errorf("/apis before the first merge was not passed on")
	}
}
