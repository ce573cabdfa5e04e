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

package cluster

import (
	"encoding/json"
	"os"
	"testing"
)

// upgradeResult is the part of upgrade.json the checks read.
type upgradeResult struct {
	Phases []struct {
		Name    string
		Seconds float64
		Targets map[string]struct {
			Requests      int
			FalseNotFound int
			Unavailable   int
			RetryAfter    int `json:"unavailableWithRetryAfter"`
			Other         int `json:"otherErrors"`
		}
	}
	StaticPods []struct {
		Node, Image  string
		ReadySeconds float64
	}
	WebReady  int             `json:"webReadyReplicas"`
	Discovery map[string]bool `json:"storagemigrationInDiscovery"`
}

// checkUpgrade asserts what the upgrade must show: no false 404 from any
// server or the load balancer in any phase, load in every phase, each
// static Pod Ready within the bound, the Deployment at its replicas, and
// storagemigration.k8s.io/v1 in every control-plane server's discovery.
func checkUpgrade(t *testing.T, path string) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var r upgradeResult
	if err := json.Unmarshal(b, &r); err != nil {
		t.Fatal(err)
	}
	if len(r.Phases) < 8 {
		t.Errorf("%d phases, want every step of the runbook", len(r.Phases))
	}
	for _, ph := range r.Phases {
		for name, ta := range ph.Targets {
			if ta.FalseNotFound != 0 {
				t.Errorf("phase %q: %s answered %d false 404s", ph.Name, name, ta.FalseNotFound)
			}
			if name == "lb" && ta.Requests == 0 {
				t.Errorf("phase %q: no request through the load balancer", ph.Name)
			}
		}
	}
	if len(r.StaticPods) < 5 {
		t.Errorf("%d static Pods measured, want one per control-plane node and the rollback and forward", len(r.StaticPods))
	}
	for _, sp := range r.StaticPods {
		if sp.ReadySeconds > staticPodBound.Seconds() {
			t.Errorf("static Pod %s on %s Ready after %.1fs, bound %s", sp.Image, sp.Node, sp.ReadySeconds, staticPodBound)
		}
	}
	if r.WebReady != 3 {
		t.Errorf("Deployment web: %d ready replicas, want 3", r.WebReady)
	}
	if len(r.Discovery) != 3 {
		t.Errorf("discovery checked on %d servers, want 3", len(r.Discovery))
	}
	for n, ok := range r.Discovery {
		if !ok {
			t.Errorf("%s's discovery does not list storagemigration.k8s.io/v1", n)
		}
	}
}
