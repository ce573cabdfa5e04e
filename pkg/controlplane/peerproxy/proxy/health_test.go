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

package proxy

import (
	"testing"

	"k8s.io/utils/clock"

	"github.com/mvp-apiserver/kube-apiserver/pkg/controlplane/peerproxy/peers"
)

func TestHealthSpreadsLoad(t *testing.T) {
	h := NewHealth(clock.RealClock{})
	peers := []*peers.Peer{{ID: "a"}, {ID: "b"}, {ID: "c"}}
	first := map[string]int{}
	for i := 0; i < 300; i++ {
		order, _ := h.order(peers)
		first[order[0].ID]++
	}
	for _, p := range peers {
		if first[p.ID] < 50 {
			t.Errorf("%s went first %d times of 300: %v", p.ID, first[p.ID], first)
		}
	}
}
