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
		first[h.order(peers)[0].ID]++
	}
	for _, p := range peers {
		if first[p.ID] < 50 {
			t.Errorf("%s went first %d times of 300: %v", p.ID, first[p.ID], first)
		}
	}
}
