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
	"slices"
	"sort"

	apiserverinternalv1alpha1 "k8s.io/api/apiserverinternal/v1alpha1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/mvp-apiserver/kube-apiserver/pkg/controlplane/peerproxy/peers"
)

// conditionAllEqual is the StorageVersion condition upstream maintains
// beside commonEncodingVersion.
const conditionAllEqual = apiserverinternalv1alpha1.AllEncodingVersionsEqual

// withEntry returns entries with id's entry set to e (nil removes it),
// sorted by server ID so that every writer produces the same order.
func withEntry(entries []peers.Entry, id string, e *peers.Entry) []peers.Entry {
	out := make([]peers.Entry, 0, len(entries)+1)
	for _, x := range entries {
		if x.APIServerID != id {
			out = append(out, x)
		}
	}
	if e != nil {
		out = append(out, *e)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].APIServerID < out[j].APIServerID })
	return out
}

// setStatus writes entries into status and recomputes what the API's
// validation requires to agree with them: commonEncodingVersion (set only
// when every entry encodes alike) and the AllEncodingVersionsEqual
// condition.
func setStatus(st *apiserverinternalv1alpha1.StorageVersionStatus, entries []peers.Entry, now metav1.Time) {
	st.StorageVersions = entries
	st.CommonEncodingVersion = commonEncodingVersion(entries)

	want := apiserverinternalv1alpha1.StorageVersionCondition{
		Type:    conditionAllEqual,
		Status:  apiserverinternalv1alpha1.ConditionFalse,
		Reason:  "CommonEncodingVersionUnset",
		Message: "Servers do not agree on an encoding version",
	}
	if st.CommonEncodingVersion != nil {
		want.Status, want.Reason, want.Message = apiserverinternalv1alpha1.ConditionTrue, "CommonEncodingVersionSet", "All servers encode with "+*st.CommonEncodingVersion
	}
	var conds []apiserverinternalv1alpha1.StorageVersionCondition
	for _, c := range st.Conditions {
		if c.Type != conditionAllEqual {
			conds = append(conds, c)
			continue
		}
		if c.Status == want.Status && c.Reason == want.Reason && c.Message == want.Message {
			want.LastTransitionTime = c.LastTransitionTime
			want.ObservedGeneration = c.ObservedGeneration
		}
	}
	if want.LastTransitionTime.IsZero() {
		want.LastTransitionTime = now
	}
	st.Conditions = append(conds, want)
}

func commonEncodingVersion(entries []peers.Entry) *string {
	if len(entries) == 0 {
		return nil
	}
	v := entries[0].EncodingVersion
	for _, e := range entries[1:] {
		if e.EncodingVersion != v {
			return nil
		}
	}
	return &v
}

// entryEqual compares the fields a server publishes.
func entryEqual(a, b peers.Entry) bool {
	return a.APIServerID == b.APIServerID && a.EncodingVersion == b.EncodingVersion &&
		slices.Equal(a.DecodableVersions, b.DecodableVersions) && slices.Equal(a.ServedVersions, b.ServedVersions)
}

// statusConsistent reports whether st already says what setStatus would
// write for its own entries (so no update is needed).
func statusConsistent(st *apiserverinternalv1alpha1.StorageVersionStatus) bool {
	want := commonEncodingVersion(st.StorageVersions)
	got := st.CommonEncodingVersion
	if (want == nil) != (got == nil) || (want != nil && *want != *got) {
		return false
	}
	for _, c := range st.Conditions {
		if c.Type == conditionAllEqual {
			return (c.Status == apiserverinternalv1alpha1.ConditionTrue) == (want != nil)
		}
	}
	return false
}

// findEntry returns id's entry in entries.
func findEntry(entries []peers.Entry, id string) (peers.Entry, bool) {
	for _, e := range entries {
		if e.APIServerID == id {
			return e, true
		}
	}
	return peers.Entry{}, false
}
