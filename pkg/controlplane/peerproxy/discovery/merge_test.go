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
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	apidiscoveryv2 "k8s.io/api/apidiscovery/v2"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// doc builds groups from "group/version:res1,res2" specs; a trailing "!"
// on the version marks it Stale.
func doc(specs ...string) []apidiscoveryv2.APIGroupDiscovery {
	var out []apidiscoveryv2.APIGroupDiscovery
	for _, s := range specs {
		gvPart, resPart, _ := strings.Cut(s, ":")
		g, v, _ := strings.Cut(gvPart, "/")
		fresh := apidiscoveryv2.DiscoveryFreshnessCurrent
		if strings.HasSuffix(v, "!") {
			v, fresh = strings.TrimSuffix(v, "!"), apidiscoveryv2.DiscoveryFreshnessStale
		}
		vd := apidiscoveryv2.APIVersionDiscovery{Version: v, Freshness: fresh}
		for _, r := range strings.Split(resPart, ",") {
			if r != "" {
				vd.Resources = append(vd.Resources, apidiscoveryv2.APIResourceDiscovery{Resource: r, Verbs: []string{"get"}})
			}
		}
		if n := len(out); n > 0 && out[n-1].Name == g {
			out[n-1].Versions = append(out[n-1].Versions, vd)
			continue
		}
		out = append(out, apidiscoveryv2.APIGroupDiscovery{ObjectMeta: metav1.ObjectMeta{Name: g}, Versions: []apidiscoveryv2.APIVersionDiscovery{vd}})
	}
	return out
}

// summary renders a merge as "group/version[!]:res,res" lines.
func summary(groups []apidiscoveryv2.APIGroupDiscovery) []string {
	var out []string
	for _, g := range groups {
		for _, v := range g.Versions {
			s := g.Name + "/" + v.Version
			if v.Freshness == apidiscoveryv2.DiscoveryFreshnessStale {
				s += "!"
			}
			var rs []string
			for _, r := range v.Resources {
				rs = append(rs, r.Resource)
			}
			out = append(out, s+":"+strings.Join(rs, ","))
		}
	}
	return out
}

func TestMergeDiscovery(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	crd := schema.GroupVersion{Group: "example.com", Version: "v1"}
	tests := []struct {
		name    string
		sources []Source
		rules   MergeRules
		want    []string
	}{{
		name: "union of groups keeps priority order; a peer-only group goes after its predecessor",
		sources: []Source{
			{Server: "a", Local: true, Fresh: true, Groups: doc("apps/v1:deployments", "policy/v1:poddisruptionbudgets")},
			{Server: "b", Fresh: true, Groups: doc("apps/v1:deployments", "batch/v1:jobs", "policy/v1:poddisruptionbudgets")},
		},
		want: []string{"apps/v1:deployments", "batch/v1:jobs", "policy/v1:poddisruptionbudgets"},
	}, {
		name: "version skew: union, GA preferred over beta whichever server has it",
		sources: []Source{
			{Server: "a", Local: true, Fresh: true, Groups: doc("flowcontrol/v1beta3:flowschemas")},
			{Server: "b", Fresh: true, Groups: doc("flowcontrol/v1:flowschemas", "flowcontrol/v1beta3:flowschemas")},
		},
		want: []string{"flowcontrol/v1:flowschemas", "flowcontrol/v1beta3:flowschemas"},
	}, {
		name: "version skew: beta before alpha, higher numbers first",
		sources: []Source{
			{Server: "a", Fresh: true, Groups: doc("x/v1alpha1:r", "x/v1beta1:r")},
			{Server: "b", Local: true, Fresh: true, Groups: doc("x/v2beta1:r", "x/v1alpha2:r")},
		},
		want: []string{"x/v2beta1:r", "x/v1beta1:r", "x/v1alpha2:r", "x/v1alpha1:r"},
	}, {
		name: "resources of one group/version are the union",
		sources: []Source{
			{Server: "a", Local: true, Fresh: true, Groups: doc("/v1:configmaps,pods")},
			{Server: "b", Fresh: true, Groups: doc("/v1:configmaps,newthings,pods")},
		},
		want: []string{"/v1:configmaps,newthings,pods"},
	}, {
		name: "a version only stale sources list is Stale; one fresh source makes it Current",
		sources: []Source{
			{Server: "a", Local: true, Fresh: true, Groups: doc("apps/v1:deployments")},
			{Server: "b", Fresh: false, Groups: doc("apps/v1:deployments", "batch/v1:jobs")},
		},
		want: []string{"apps/v1:deployments", "batch/v1!:jobs"},
	}, {
		name: "a version its own server marks Stale stays Stale",
		sources: []Source{
			{Server: "a", Local: true, Fresh: true, Groups: doc("metrics.k8s.io/v1beta1!:")},
		},
		rules: MergeRules{Extensions: map[schema.GroupVersion]bool{{Group: "metrics.k8s.io", Version: "v1beta1"}: true}},
		want:  []string{"metrics.k8s.io/v1beta1!:"},
	}, {
		name: "extensions come from this server alone: never duplicated",
		sources: []Source{
			{Server: "a", Local: true, Fresh: true, Groups: doc("example.com/v1:widgets")},
			{Server: "b", Fresh: true, Groups: doc("example.com/v1:widgets,gadgets")},
		},
		rules: MergeRules{Extensions: map[schema.GroupVersion]bool{crd: true}},
		want:  []string{"example.com/v1:widgets"},
	}, {
		name: "a deleted CRD is not brought back by a peer's older document",
		sources: []Source{
			{Server: "a", Local: true, Fresh: true, FetchedAt: t0.Add(10 * time.Second), Groups: doc("apps/v1:deployments")},
			{Server: "b", Fresh: false, FetchedAt: t0, Groups: doc("apps/v1:deployments", "example.com/v1:widgets")},
		},
		rules: MergeRules{Removed: map[schema.GroupVersion]time.Time{crd: t0.Add(5 * time.Second)}},
		want:  []string{"apps/v1:deployments"},
	}, {
		name: "a peer document read well after the removal counts again (the group came back as built-in)",
		sources: []Source{
			{Server: "b", Fresh: true, FetchedAt: t0.Add(time.Minute), Groups: doc("example.com/v1:widgets")},
		},
		rules: MergeRules{Removed: map[schema.GroupVersion]time.Time{crd: t0}},
		want:  []string{"example.com/v1:widgets"},
	}, {
		name: "a deleted CRD is gone before this server's own discovery drops it",
		sources: []Source{
			{Server: "a", Local: true, Fresh: true, FetchedAt: t0.Add(2 * time.Second), Groups: doc("apps/v1:deployments", "example.com/v1:widgets")},
		},
		rules: MergeRules{Removed: map[schema.GroupVersion]time.Time{crd: t0}},
		want:  []string{"apps/v1:deployments"},
	}, {
		name: "this server's own document read well after the removal counts again",
		sources: []Source{
			{Server: "a", Local: true, Fresh: true, FetchedAt: t0.Add(time.Minute), Groups: doc("example.com/v1:widgets")},
		},
		rules: MergeRules{Removed: map[schema.GroupVersion]time.Time{crd: t0}},
		want:  []string{"example.com/v1:widgets"},
	}, {
		name: "no sources, nothing",
		want: nil,
	}}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := summary(Merge(tc.sources, tc.rules))
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("merge (-want +got):\n%s", diff)
			}
		})
	}
}

func TestMergeDiscoveryPicksResourceDescription(t *testing.T) {
	withSub := apidiscoveryv2.APIResourceDiscovery{Resource: "jobs", Verbs: []string{"get"},
		Subresources: []apidiscoveryv2.APISubresourceDiscovery{{Subresource: "status"}}}
	plain := apidiscoveryv2.APIResourceDiscovery{Resource: "jobs", Verbs: []string{"get", "list"}}
	group := func(r apidiscoveryv2.APIResourceDiscovery) []apidiscoveryv2.APIGroupDiscovery {
		return []apidiscoveryv2.APIGroupDiscovery{{ObjectMeta: metav1.ObjectMeta{Name: "batch"},
			Versions: []apidiscoveryv2.APIVersionDiscovery{{Version: "v1", Resources: []apidiscoveryv2.APIResourceDiscovery{r}}}}}
	}
	tests := []struct {
		name      string
		a, b      Source
		wantVerbs int
		wantSubs  int
	}{
		{"more subresources win", Source{Server: "a", Fresh: true, Groups: group(plain)}, Source{Server: "b", Fresh: true, Groups: group(withSub)}, 1, 1},
		{"a fresh source wins over more subresources", Source{Server: "a", Fresh: true, Groups: group(plain)}, Source{Server: "b", Groups: group(withSub)}, 2, 0},
		{"more verbs win on equal subresources", Source{Server: "b", Fresh: true, Groups: group(plain)}, Source{Server: "a", Fresh: true, Groups: group(apidiscoveryv2.APIResourceDiscovery{Resource: "jobs", Verbs: []string{"get"}})}, 2, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			for _, order := range [][]Source{{tc.a, tc.b}, {tc.b, tc.a}} {
				got := Merge(order, MergeRules{})
				r := got[0].Versions[0].Resources[0]
				if len(r.Verbs) != tc.wantVerbs || len(r.Subresources) != tc.wantSubs {
					t.Errorf("picked verbs=%v subresources=%v, want %d verbs and %d subresources", r.Verbs, r.Subresources, tc.wantVerbs, tc.wantSubs)
				}
			}
		})
	}
}

// Every server must answer the same bytes: the merge may not depend on
// which source is local or on the order sources are given in.
func TestMergeDiscoveryIsDeterministic(t *testing.T) {
	a := doc("apps/v1:deployments,statefulsets", "policy/v1:poddisruptionbudgets", "x/v1beta1:r")
	b := doc("apps/v1:deployments,replicasets,statefulsets", "batch/v1:cronjobs,jobs", "policy/v1:poddisruptionbudgets", "x/v1:r", "x/v1beta1:r")
	c := doc("apps/v1:controllerrevisions,deployments", "batch/v1:jobs", "storage/v1:csidrivers")
	encode := func(groups []apidiscoveryv2.APIGroupDiscovery) string {
		b, err := json.Marshal(groups)
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	var first string
	for local := 0; local < 3; local++ {
		srcs := []Source{{Server: "a", Fresh: true, Groups: a}, {Server: "b", Fresh: true, Groups: b}, {Server: "c", Fresh: true, Groups: c}}
		srcs[local].Local = true
		for _, order := range [][]int{{0, 1, 2}, {2, 1, 0}, {1, 2, 0}} {
			in := []Source{srcs[order[0]], srcs[order[1]], srcs[order[2]]}
			got := encode(Merge(in, MergeRules{}))
			if first == "" {
				first = got
				continue
			}
			if got != first {
				t.Fatalf("local=%d order=%v: merge differs:\n%s\nvs\n%s", local, order, got, first)
			}
		}
	}
	want := []string{
		"apps/v1:controllerrevisions,deployments,replicasets,statefulsets",
		"batch/v1:cronjobs,jobs",
		"storage/v1:csidrivers", // after batch, as in c's own order
		"policy/v1:poddisruptionbudgets",
		"x/v1:r", "x/v1beta1:r",
	}
	var groups []apidiscoveryv2.APIGroupDiscovery
	if err := json.Unmarshal([]byte(first), &groups); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(want, summary(groups)); diff != "" {
		t.Errorf("merge (-want +got):\n%s", diff)
	}
}

// On a cluster of identical servers the merge must not change a group's
// preferred version: every built-in group's priority order is the
// Kubernetes version order the merge uses.
func TestAPIGroupList(t *testing.T) {
	list := APIGroupList(doc("batch/v1:jobs", "batch/v1beta1:cronjobs", "apps/v1:deployments"))
	if len(list.Groups) != 2 || list.Groups[0].Name != "batch" || list.Groups[0].PreferredVersion.GroupVersion != "batch/v1" ||
		len(list.Groups[0].Versions) != 2 || list.Groups[0].Versions[1].GroupVersion != "batch/v1beta1" || list.Groups[1].PreferredVersion.Version != "v1" {
		t.Errorf("unexpected group list: %+v", list)
	}
}

func TestMergeSharesResourceListsItDoesNotChange(t *testing.T) {
	local := doc("apps/v1:deployments,replicasets", "/v1:configmaps,pods")
	peer := doc("apps/v1:deployments,replicasets", "/v1:configmaps,newthings,pods")
	out := Merge([]Source{
		{Server: "a", Local: true, Fresh: true, Groups: local},
		{Server: "b", Fresh: true, Groups: peer},
	}, MergeRules{})
	if diff := cmp.Diff([]string{"apps/v1:deployments,replicasets", "/v1:configmaps,newthings,pods"}, summary(out)); diff != "" {
		t.Fatalf("merge (-want +got):\n%s", diff)
	}
	if &out[0].Versions[0].Resources[0] != &local[0].Versions[0].Resources[0] {
		t.Errorf("apps/v1, listed alike by both servers, was copied instead of shared with the first source")
	}
	if &out[1].Versions[0].Resources[0] == &local[1].Versions[0].Resources[0] || &out[1].Versions[0].Resources[0] == &peer[1].Versions[0].Resources[0] {
		t.Errorf("/v1, a union of both servers' resources, shares a source's list")
	}
}

func TestMergeOrder(t *testing.T) {
	for _, tc := range []struct {
		lists [][]string
		want  []string
	}{
		{nil, []string{}},
		{[][]string{{"a", "b", "c"}}, []string{"a", "b", "c"}},
		{[][]string{{"a", "c"}, {"a", "b", "c", "d"}}, []string{"a", "b", "c", "d"}},
		{[][]string{{"b", "c"}, {"a", "c"}}, []string{"a", "b", "c"}},
		{[][]string{{"a", "b"}, {"b", "a", "x"}}, []string{"a", "x", "b"}}, // the first list wins; x follows a
		{[][]string{{"a"}, {"x", "y"}, {"y", "z"}}, []string{"x", "y", "z", "a"}},
	} {
		if got := mergeOrder(tc.lists); !cmp.Equal(tc.want, got) {
			t.Errorf("mergeOrder(%v) = %v, want %v", tc.lists, got, tc.want)
		}
	}
}
