package peers_test

import (
	"testing"

	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/mvp-apiserver/kube-apiserver/pkg/controlplane/peerproxy/peers"
)

func TestStorageVersionNames(t *testing.T) {
	tests := []struct {
		gr   schema.GroupResource
		name string
	}{
		{schema.GroupResource{Resource: "pods"}, "core.pods"},
		{schema.GroupResource{Group: "apps", Resource: "deployments"}, "apps.deployments"},
		{schema.GroupResource{Group: "networking.k8s.io", Resource: "ingresses"}, "networking.k8s.io.ingresses"},
	}
	for _, tt := range tests {
		if got := peers.StorageVersionName(tt.gr); got != tt.name {
			t.Errorf("StorageVersionName(%v) = %q, want %q", tt.gr, got, tt.name)
		}
		gr, ok := peers.ParseStorageVersionName(tt.name)
		if !ok || gr != tt.gr {
			t.Errorf("ParseStorageVersionName(%q) = %v %v, want %v", tt.name, gr, ok, tt.gr)
		}
	}
	for _, bad := range []string{"", "pods", ".pods", "apps."} {
		if _, ok := peers.ParseStorageVersionName(bad); ok {
			t.Errorf("ParseStorageVersionName(%q) accepted", bad)
		}
	}
}
