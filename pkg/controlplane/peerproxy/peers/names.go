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
