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

package registration

import (
	"reflect"
	"testing"

	apiserverinternalv1alpha1 "k8s.io/api/apiserverinternal/v1alpha1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/mvp-apiserver/kube-apiserver/pkg/controlplane/peerproxy/peers"
)

func ids(entries []peers.Entry) []string {
	var out []string
	for _, e := range entries {
		out = append(out, e.APIServerID)
	}
	return out
}

func TestWithEntry(t *testing.T) {
	base := []peers.Entry{entry("c", "v1"), entry("a", "v1")}
	tests := []struct {
		name string
		id   string
		e    *peers.Entry
		want []string
	}{
		{name: "adds and sorts", id: "b", e: &peers.Entry{APIServerID: "b", EncodingVersion: "v1"}, want: []string{"a", "b", "c"}},
		{name: "replaces", id: "a", e: &peers.Entry{APIServerID: "a", EncodingVersion: "v2"}, want: []string{"a", "c"}},
		{name: "removes", id: "c", want: []string{"a"}},
		{name: "removing an absent entry changes nothing", id: "z", want: []string{"a", "c"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := withEntry(base, tt.id, tt.e)
			if !reflect.DeepEqual(ids(got), tt.want) {
				t.Errorf("ids = %v, want %v", ids(got), tt.want)
			}
			if len(base) != 2 || base[0].APIServerID != "c" {
				t.Errorf("input was modified: %v", ids(base))
			}
		})
	}
}

func TestSetStatus(t *testing.T) {
	now := metav1.NewTime(t0)
	later := metav1.NewTime(t0.Add(1e9))
	v1 := "apps/v1"
	tests := []struct {
		name       string
		entries    []peers.Entry
		prior      []apiserverinternalv1alpha1.StorageVersionCondition
		wantCommon *string
		wantStatus apiserverinternalv1alpha1.ConditionStatus
		wantTime   metav1.Time
	}{
		{name: "all agree", entries: []peers.Entry{entry("a", "apps/v1"), entry("b", "apps/v1")}, wantCommon: &v1, wantStatus: apiserverinternalv1alpha1.ConditionTrue, wantTime: later},
		{name: "they differ", entries: []peers.Entry{entry("a", "apps/v1"), entry("b", "apps/v1beta2")}, wantStatus: apiserverinternalv1alpha1.ConditionFalse, wantTime: later},
		{name: "unchanged condition keeps its transition time",
			entries:    []peers.Entry{entry("a", "apps/v1")},
			prior:      []apiserverinternalv1alpha1.StorageVersionCondition{{Type: conditionAllEqual, Status: apiserverinternalv1alpha1.ConditionTrue, Reason: "CommonEncodingVersionSet", Message: "All servers encode with apps/v1", LastTransitionTime: now}},
			wantCommon: &v1, wantStatus: apiserverinternalv1alpha1.ConditionTrue, wantTime: now},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st := &apiserverinternalv1alpha1.StorageVersionStatus{Conditions: tt.prior}
			setStatus(st, tt.entries, later)
			if !reflect.DeepEqual(st.CommonEncodingVersion, tt.wantCommon) {
				t.Errorf("common = %v, want %v", st.CommonEncodingVersion, tt.wantCommon)
			}
			if len(st.Conditions) != 1 || st.Conditions[0].Status != tt.wantStatus || !st.Conditions[0].LastTransitionTime.Equal(&tt.wantTime) {
				t.Errorf("conditions = %+v, want status %s at %v", st.Conditions, tt.wantStatus, tt.wantTime)
			}
			if st.Conditions[0].Reason == "" || st.Conditions[0].Message == "" {
				t.Error("the API requires a reason and a message")
			}
			if !statusConsistent(st) {
				t.Error("setStatus produced an inconsistent status")
			}
		})
	}
}

func TestStatusConsistent(t *testing.T) {
	v1, v2 := "apps/v1", "apps/v2"
	agree := []peers.Entry{entry("a", "apps/v1"), entry("b", "apps/v1")}
	cond := func(s apiserverinternalv1alpha1.ConditionStatus) []apiserverinternalv1alpha1.StorageVersionCondition {
		return []apiserverinternalv1alpha1.StorageVersionCondition{{Type: conditionAllEqual, Status: s}}
	}
	tests := []struct {
		name string
		st   apiserverinternalv1alpha1.StorageVersionStatus
		want bool
	}{
		{name: "right", st: apiserverinternalv1alpha1.StorageVersionStatus{StorageVersions: agree, CommonEncodingVersion: &v1, Conditions: cond("True")}, want: true},
		{name: "common missing", st: apiserverinternalv1alpha1.StorageVersionStatus{StorageVersions: agree, Conditions: cond("True")}},
		{name: "common wrong", st: apiserverinternalv1alpha1.StorageVersionStatus{StorageVersions: agree, CommonEncodingVersion: &v2, Conditions: cond("True")}},
		{name: "condition missing", st: apiserverinternalv1alpha1.StorageVersionStatus{StorageVersions: agree, CommonEncodingVersion: &v1}},
		{name: "condition wrong", st: apiserverinternalv1alpha1.StorageVersionStatus{StorageVersions: agree, CommonEncodingVersion: &v1, Conditions: cond("False")}},
	}
	for _, tt := range tests {
		if got := statusConsistent(&tt.st); got != tt.want {
			t.Errorf("%s: statusConsistent = %v, want %v", tt.name, got, tt.want)
		}
	}
}
