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

package peers

import (
	"strings"

	apiserverinternalv1alpha1 "k8s.io/api/apiserverinternal/v1alpha1"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// coreGroupName stands for the core group in names: a StorageVersion's
// name may not start with a dot.
const coreGroupName = "core"

// StorageVersionName is the name of the StorageVersion object of gr.
func StorageVersionName(gr schema.GroupResource) string {
	g := gr.Group
	if g == "" {
		g = coreGroupName
	}
	return g + "." + gr.Resource
}

// ParseStorageVersionName inverts StorageVersionName. Resources never hold
// a dot, so the group is everything before the last one.
func ParseStorageVersionName(name string) (schema.GroupResource, bool) {
	i := strings.LastIndexByte(name, '.')
	if i <= 0 || i == len(name)-1 {
		return schema.GroupResource{}, false
	}
	g := name[:i]
	if g == coreGroupName {
		g = ""
	}
	return schema.GroupResource{Group: g, Resource: name[i+1:]}, true
}

// GVRKey names a GVR in documents and logs; the core group is "core".
func GVRKey(gvr schema.GroupVersionResource) string {
	g := gvr.Group
	if g == "" {
		g = coreGroupName
	}
	return g + "/" + gvr.Version + "/" + gvr.Resource
}

// Entry is one server's record in a StorageVersion.
type Entry = apiserverinternalv1alpha1.ServerStorageVersion
