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
	"fmt"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	coordinationv1 "k8s.io/api/coordination/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/klog/v2"
	"k8s.io/kube-openapi/pkg/handler3"
	testingclock "k8s.io/utils/clock/testing"

	"github.com/mvp-apiserver/kube-apiserver/pkg/controlplane/peerproxy/peers"
)

// testPeer is one peer's side of a Build case.
type testPeer struct {
	live      bool
	apis      []string // doc specs
	lastError string
}

// discoveryInputs: this server "a" lists /v1 pods and localAPIs; peers as
// given, each at <id>:6443, its documents read at t0 - 1s.
func discoveryInputs(localAPIs []string, byID map[string]testPeer, extensions ...schema.GroupVersion) Inputs {
	leases := []*coordinationv1.Lease{lease("a", "a:6443", 0)}
	in := Inputs{
		Self: "a", Now: t0,
		Local: &serverDocs{
			api: rootDoc{groups: doc("/v1:pods")}, apis: rootDoc{groups: doc(localAPIs...)},
			openAPI:   map[string]string{"api/v1": "/openapi/v3/api/v1?hash=L"},
			fetchedAt: t0,
		},
		Peers: map[string]PeerDocs{},
		Rules: MergeRules{Extensions: map[schema.GroupVersion]bool{}},
	}
	for _, gv := range extensions {
		in.Rules.Extensions[gv] = true
	}
	for id, p := range byID {
		ago := time.Duration(0)
		if !p.live {
			ago = time.Hour
		}
		leases = append(leases, lease(id, id+":6443", ago))
		docs := &serverDocs{api: rootDoc{groups: doc("/v1:pods")}, apis: rootDoc{groups: doc(p.apis...)}, openAPI: map[string]string{}, fetchedAt: t0.Add(-time.Second)}
		for _, g := range docs.apis.groups {
			for _, v := range g.Versions {
				docs.openAPI["apis/"+g.Name+"/"+v.Version] = "/openapi/v3/apis/" + g.Name + "/" + v.Version + "?hash=" + id
			}
		}
		in.Peers[id] = PeerDocs{docs: docs, lastError: p.lastError}
	}
	in.Table = peers.BuildSnapshot(peers.SnapshotInputs{Self: "a", Now: t0, LiveWindow: 30 * time.Second, Leases: leases})
	return in
}

func TestBuildDiscovery(t *testing.T) {
	batch := schema.GroupVersion{Group: "batch", Version: "v1"}
	widgets := schema.GroupVersion{Group: "example.com", Version: "v1"}
	for _, tc := range []struct {
		name       string
		local      []string
		peers      map[string]testPeer
		extensions []schema.GroupVersion
		// wantAPIs: the merged /apis document (summary); wantPeersFor: the
		// peers a peer-only group/version is forwarded to; wantDiscovered:
		// what each peer contributes to routing; wantOpenAPI: the merged
		// OpenAPI root's paths, nil when there is none.
		wantAPIs       []string
		wantPeersFor   map[schema.GroupVersion][]string
		wantDiscovered map[string][]string
		wantOpenAPI    []string
	}{{
		name:           "a live peer adds a group",
		local:          []string{"apps/v1:deployments"},
		peers:          map[string]testPeer{"b": {live: true, apis: []string{"apps/v1:deployments", "batch/v1:jobs"}}},
		wantAPIs:       []string{"apps/v1:deployments", "batch/v1:jobs"},
		wantPeersFor:   map[schema.GroupVersion][]string{batch: {"b"}},
		wantDiscovered: map[string][]string{"b": {"/v1/pods", "apps/v1/deployments", "batch/v1/jobs"}},
		wantOpenAPI:    []string{"api/v1", "apis/batch/v1"},
	}, {
		name:           "a departed peer's data stays, stale, and routes nowhere",
		local:          []string{"apps/v1:deployments"},
		peers:          map[string]testPeer{"d": {apis: []string{"batch/v1:jobs"}}},
		wantAPIs:       []string{"batch/v1!:jobs", "apps/v1:deployments"}, // batch has no predecessor in its source
		wantPeersFor:   map[schema.GroupVersion][]string{},
		wantDiscovered: map[string][]string{"d": {"/v1/pods", "batch/v1/jobs"}},
		wantOpenAPI:    []string{"api/v1", "apis/batch/v1"},
	}, {
		name:           "a live peer whose last fetch failed is stale but still routed",
		local:          []string{"apps/v1:deployments"},
		peers:          map[string]testPeer{"b": {live: true, apis: []string{"batch/v1:jobs"}, lastError: "timeout"}},
		wantAPIs:       []string{"batch/v1!:jobs", "apps/v1:deployments"}, // batch has no predecessor in its source
		wantPeersFor:   map[schema.GroupVersion][]string{batch: {"b"}},
		wantDiscovered: map[string][]string{"b": {"/v1/pods", "batch/v1/jobs"}},
		wantOpenAPI:    []string{"api/v1", "apis/batch/v1"},
	}, {
		name:           "extensions come from this server alone",
		local:          []string{"apps/v1:deployments"},
		peers:          map[string]testPeer{"b": {live: true, apis: []string{"example.com/v1:widgets"}}},
		extensions:     []schema.GroupVersion{widgets},
		wantAPIs:       []string{"apps/v1:deployments"},
		wantPeersFor:   map[schema.GroupVersion][]string{},
		wantDiscovered: map[string][]string{"b": {"/v1/pods"}},
	}, {
		name:           "two peers serving one group, in ID order",
		local:          []string{"apps/v1:deployments"},
		peers:          map[string]testPeer{"c": {live: true, apis: []string{"batch/v1:jobs"}}, "b": {live: true, apis: []string{"batch/v1:cronjobs,jobs"}}},
		wantAPIs:       []string{"batch/v1:cronjobs,jobs", "apps/v1:deployments"},
		wantPeersFor:   map[schema.GroupVersion][]string{batch: {"b", "c"}},
		wantDiscovered: map[string][]string{"b": {"/v1/pods", "batch/v1/cronjobs", "batch/v1/jobs"}, "c": {"/v1/pods", "batch/v1/jobs"}},
		wantOpenAPI:    []string{"api/v1", "apis/batch/v1"},
	}} {
		t.Run(tc.name, func(t *testing.T) {
			out, discovered := Build(discoveryInputs(tc.local, tc.peers, tc.extensions...))
			if d := cmp.Diff(tc.wantAPIs, summary(out.APIs.Items)); d != "" {
				t.Errorf("/apis (-want +got):\n%s", d)
			}
			peersFor := map[schema.GroupVersion][]string{}
			for gv, ps := range out.peersFor {
				for _, p := range ps {
					peersFor[gv] = append(peersFor[gv], p.ID)
				}
			}
			if d := cmp.Diff(tc.wantPeersFor, peersFor); d != "" {
				t.Errorf("peer-only routes (-want +got):\n%s", d)
			}
			got := map[string][]string{}
			for id, gvrs := range discovered {
				got[id] = []string{}
				for _, gvr := range gvrs {
					got[id] = append(got[id], gvr.Group+"/"+gvr.Version+"/"+gvr.Resource)
				}
				sort.Strings(got[id])
			}
			if d := cmp.Diff(tc.wantDiscovered, got); d != "" {
				t.Errorf("discovered (-want +got):\n%s", d)
			}
			var paths []string
			if out.OpenAPIRoot != nil {
				var root handler3.OpenAPIV3Discovery
				if err := json.Unmarshal(out.OpenAPIRoot, &root); err != nil {
					t.Fatal(err)
				}
				for p := range root.Paths {
					paths = append(paths, p)
				}
				sort.Strings(paths)
			}
			if d := cmp.Diff(tc.wantOpenAPI, paths); d != "" {
				t.Errorf("OpenAPI root paths (-want +got):\n%s", d)
			}
		})
	}
}

// The build is pure: the same inputs give the same documents and ETags,
// and the debug rows say what each peer's data is.
func TestBuildDiscoveryIsPureAndDescribesPeers(t *testing.T) {
	peers := map[string]testPeer{"b": {live: true, apis: []string{"batch/v1:jobs"}}, "c": {live: true, apis: []string{"batch/v1:jobs"}, lastError: "unreachable"}}
	one, _ := Build(discoveryInputs([]string{"apps/v1:deployments"}, peers))
	two, _ := Build(discoveryInputs([]string{"apps/v1:deployments"}, peers))
	if one.APIsETag != two.APIsETag || one.APIETag != two.APIETag || one.OpenAPIRootETag != two.OpenAPIRootETag {
		t.Errorf("ETags differ between two builds of the same inputs")
	}
	rows := one.Peers()
	if len(rows) != 2 || rows[0].ID != "b" || !rows[0].Fresh || rows[1].ID != "c" || rows[1].Fresh || !strings.Contains(rows[1].LastError, "unreachable") {
		t.Errorf("debug rows %+v", rows)
	}
	if rows[0].AgeSeconds != 1 {
		t.Errorf("b's data is %.1f s old, want 1", rows[0].AgeSeconds)
	}
}

// A peer that keeps failing the same way moves its row's error time at
// each failure without a rebuild of the documents; a new cause rebuilds.
func TestRepeatedFailureMovesOnlyTheDebugRow(t *testing.T) {
	in := discoveryInputs([]string{"apps/v1:deployments"}, map[string]testPeer{"b": {live: true, apis: []string{"batch/v1:jobs"}}})
	table := &fakeTable{}
	table.snap.Store(in.Table)
	clk := testingclock.NewFakeClock(t0)
	merged := &Merged{}
	d := NewController(Config{Self: "a", Table: table, Local: staticDocs(nil), Retention: time.Minute, Clock: clk, Publish: merged})
	d.localDocs = in.Local
	d.record(klog.Background(), "b", "b:6443", nil, false, fmt.Errorf("decoding /api: garbage"))
	d.merge(klog.Background())
	first := merged.Snapshot()
	rowAt := func(s *Snapshot) time.Time {
		t.Helper()
		rows := s.Peers()
		if len(rows) != 1 || rows[0].LastErrorAt == nil {
			t.Fatalf("debug rows %+v, want b's with an error time", rows)
		}
		return *rows[0].LastErrorAt
	}
	if at := rowAt(first); !at.Equal(t0) {
		t.Fatalf("first failure at %v, want %v", at, t0)
	}

	clk.Step(2 * time.Second)
	d.record(klog.Background(), "b", "b:6443", nil, false, fmt.Errorf("decoding /api: garbage"))
	d.merge(klog.Background())
	again := merged.Snapshot()
	if at := rowAt(again); !at.Equal(t0.Add(2 * time.Second)) {
		t.Errorf("the repeated failure shows at %v, want %v", at, t0.Add(2*time.Second))
	}
	if again.APIs != first.APIs || !again.Built.Equal(first.Built) {
		t.Errorf("the documents were rebuilt for a repeated failure")
	}

	clk.Step(2 * time.Second)
	d.record(klog.Background(), "b", "b:6443", nil, false, fmt.Errorf("dial tcp: connection refused"))
	d.merge(klog.Background())
	if s := merged.Snapshot(); !s.Built.Equal(t0.Add(4*time.Second)) || !strings.Contains(s.Peers()[0].LastError, "refused") {
		t.Errorf("a new cause was not rebuilt: built %v, rows %+v", s.Built, s.Peers())
	}
}
