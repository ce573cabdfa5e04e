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

// Package kindconfig checks hack/kind/cluster.yaml against kind's own
// configuration type, decoded strictly as kind decodes it.
package kindconfig

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"sigs.k8s.io/kind/pkg/apis/config/v1alpha4"
	"sigs.k8s.io/yaml"
)

const configPath = "../../kind/cluster.yaml"

func decode(data []byte) (*v1alpha4.Cluster, error) {
	var c v1alpha4.Cluster
	if err := yaml.UnmarshalStrict(data, &c); err != nil {
		return nil, err
	}
	return &c, nil
}

func TestKindConfigDecodesStrictly(t *testing.T) {
	data, err := os.ReadFile(configPath)
	if err != nil {
		t.Fatal(err)
	}
	c, err := decode(data)
	if err != nil {
		t.Fatalf("%s does not decode strictly into kind's v1alpha4.Cluster: %v", configPath, err)
	}
	if c.Kind != "Cluster" || c.APIVersion != "kind.x-k8s.io/v1alpha4" {
		t.Errorf("kind/apiVersion %q/%q", c.Kind, c.APIVersion)
	}
	if !c.FeatureGates["UnknownVersionInteroperabilityProxy"] {
		t.Error("the UnknownVersionInteroperabilityProxy feature gate is not on")
	}
	peerCA := false
	for _, p := range c.KubeadmConfigPatchesJSON6902 {
		peerCA = peerCA || (p.Kind == "ClusterConfiguration" && strings.Contains(p.Patch, "name: peer-ca-file") &&
			strings.Contains(p.Patch, "/etc/kubernetes/pki/ca.crt"))
	}
	if !peerCA {
		t.Error("no ClusterConfiguration patch adds --peer-ca-file=/etc/kubernetes/pki/ca.crt")
	}

	controlPlanes := 0
	for i, n := range c.Nodes {
		if n.Role != v1alpha4.ControlPlaneRole {
			continue
		}
		controlPlanes++
		mounted := false
		for _, m := range n.ExtraMounts {
			if m.ContainerPath == "/etc/mvp/patches" {
				mounted = true
				if _, err := os.Stat(filepath.Join("../..", strings.TrimPrefix(m.HostPath, "hack/"), "kube-apiserver+json.yaml")); err != nil {
					t.Errorf("node %d mounts %s, which has no kube-apiserver patch: %v", i, m.HostPath, err)
				}
			}
		}
		if !mounted {
			t.Errorf("control-plane node %d does not mount the patches roll.sh applies at /etc/mvp/patches", i)
		}
	}
	if controlPlanes < 3 {
		t.Errorf("%d control-plane nodes, want at least 3 (an HA control plane to roll through)", controlPlanes)
	}
}

// Strict means strict: a misspelt field is an error, not silently dropped.
func TestKindConfigRejectsUnknownFields(t *testing.T) {
	data, err := os.ReadFile(configPath)
	if err != nil {
		t.Fatal(err)
	}
	for _, typo := range []struct{ from, to string }{
		{"featureGates:", "featureGate:"},
		{"  extraMounts:", "  extraMount:"},
		{"role: worker", "role: worker\n  labelz: {}"},
	} {
		bad := strings.Replace(string(data), typo.from, typo.to, 1)
		if bad == string(data) {
			t.Fatalf("%q is not in %s", typo.from, configPath)
		}
		if _, err := decode([]byte(bad)); err == nil || !strings.Contains(err.Error(), "unknown field") {
			t.Errorf("with %q: got %v, want an unknown field error", typo.to, err)
		}
	}
}
