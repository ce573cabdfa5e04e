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
	"testing"

	"k8s.io/apimachinery/pkg/version"
	"k8s.io/client-go/kubernetes/scheme"
	"k8s.io/kubernetes/pkg/api/legacyscheme"

	// Every built-in group, installed into legacyscheme with its version
	// priority. Only these, not k8s.io/kubernetes/pkg/controlplane: the
	// race build of make test-unit then compiles a quarter of the packages.
	_ "k8s.io/kubernetes/pkg/apis/admission/install"
	_ "k8s.io/kubernetes/pkg/apis/admissionregistration/install"
	_ "k8s.io/kubernetes/pkg/apis/apiserverinternal/install"
	_ "k8s.io/kubernetes/pkg/apis/apps/install"
	_ "k8s.io/kubernetes/pkg/apis/authentication/install"
	_ "k8s.io/kubernetes/pkg/apis/authorization/install"
	_ "k8s.io/kubernetes/pkg/apis/autoscaling/install"
	_ "k8s.io/kubernetes/pkg/apis/batch/install"
	_ "k8s.io/kubernetes/pkg/apis/certificates/install"
	_ "k8s.io/kubernetes/pkg/apis/coordination/install"
	_ "k8s.io/kubernetes/pkg/apis/core/install"
	_ "k8s.io/kubernetes/pkg/apis/discovery/install"
	_ "k8s.io/kubernetes/pkg/apis/events/install"
	_ "k8s.io/kubernetes/pkg/apis/extensions/install"
	_ "k8s.io/kubernetes/pkg/apis/flowcontrol/install"
	_ "k8s.io/kubernetes/pkg/apis/imagepolicy/install"
	_ "k8s.io/kubernetes/pkg/apis/lifecycle/install"
	_ "k8s.io/kubernetes/pkg/apis/networking/install"
	_ "k8s.io/kubernetes/pkg/apis/node/install"
	_ "k8s.io/kubernetes/pkg/apis/policy/install"
	_ "k8s.io/kubernetes/pkg/apis/rbac/install"
	_ "k8s.io/kubernetes/pkg/apis/resource/install"
	_ "k8s.io/kubernetes/pkg/apis/scheduling/install"
	_ "k8s.io/kubernetes/pkg/apis/storage/install"
	_ "k8s.io/kubernetes/pkg/apis/storagemigration/install"
)

// MergeDiscovery orders a group's versions by Kubernetes version priority;
// upstream orders built-in groups by their scheme's priority. The two must
// agree, or merged discovery would reorder a server's own groups.
func TestBuiltinVersionOrderIsKubeAware(t *testing.T) {
	byGroup := map[string][]string{}
	for _, gv := range legacyscheme.Scheme.PrioritizedVersionsAllGroups() {
		byGroup[gv.Group] = append(byGroup[gv.Group], gv.Version)
	}
	// client-go knows every built-in group: one missing above is an
	// install package to add.
	for _, gv := range scheme.Scheme.PrioritizedVersionsAllGroups() {
		if _, ok := byGroup[gv.Group]; !ok {
			t.Errorf("group %q is built in (client-go's scheme has %s) but not installed in this test: import its install package", gv.Group, gv)
		}
	}
	for g, versions := range byGroup {
		for i := 1; i < len(versions); i++ {
			if version.CompareKubeAwareVersionStrings(versions[i-1], versions[i]) <= 0 {
				t.Errorf("group %q prefers %s over %s; the merge would reorder them", g, versions[i-1], versions[i])
			}
		}
	}
}
