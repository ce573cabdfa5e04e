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
