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
	"math/rand/v2"
	"sync"
	"time"

	"k8s.io/utils/clock"

	"github.com/mvp-apiserver/kube-apiserver/pkg/controlplane/peerproxy/peers"
)

const (
	minBackoff = time.Second
	maxBackoff = 30 * time.Second
)

// Health remembers which peers recently could not be reached, so the next
// requests try the others first. Only proxied requests touch it.
type Health struct {
	clock clock.Clock
	// start picks where rotation begins among n peers.
	start func(n int) int
	mu    sync.Mutex
	peers map[string]*peerHealth
}

type peerHealth struct {
	unhealthyUntil time.Time
	backoff        time.Duration
	lastError      string
	lastErrorAt    time.Time
}

// NewHealth starts with every peer healthy.
func NewHealth(clk clock.Clock) *Health {
	return &Health{clock: clk, start: rand.IntN, peers: map[string]*peerHealth{}}
}

// order returns peers healthy ones first, each group rotated from a random
// start so load spreads; peers in backoff come last. healthy is how many
// lead the list.
func (h *Health) order(ps []*peers.Peer) (ordered []*peers.Peer, healthy int) {
	if len(ps) == 0 {
		return ps, 0
	}
	now := h.clock.Now()
	good := make([]*peers.Peer, 0, len(ps))
	var backoff []*peers.Peer
	h.mu.Lock()
	for _, p := range ps {
		if ph := h.peers[p.ID]; ph != nil && now.Before(ph.unhealthyUntil) {
			backoff = append(backoff, p)
		} else {
			good = append(good, p)
		}
	}
	h.mu.Unlock()
	return append(h.rotate(good), h.rotate(backoff)...), len(good)
}

func (h *Health) rotate(ps []*peers.Peer) []*peers.Peer {
	if len(ps) <= 1 {
		return ps
	}
	k := h.start(len(ps))
	return append(ps[k:len(ps):len(ps)], ps[:k]...)
}

// failed puts a peer in backoff, doubling it on repeated failures.
func (h *Health) failed(id string, err error) {
	now := h.clock.Now()
	h.mu.Lock()
	defer h.mu.Unlock()
	ph := h.peers[id]
	if ph == nil {
		ph = &peerHealth{}
		h.peers[id] = ph
	}
	if ph.backoff == 0 {
		ph.backoff = minBackoff
	} else if ph.backoff < maxBackoff {
		ph.backoff = min(2*ph.backoff, maxBackoff)
	}
	ph.unhealthyUntil = now.Add(ph.backoff)
	ph.lastError, ph.lastErrorAt = err.Error(), now
}

// succeeded clears a peer's backoff; its last error stays for /debug.
func (h *Health) succeeded(id string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if ph := h.peers[id]; ph != nil {
		ph.backoff, ph.unhealthyUntil = 0, time.Time{}
	}
}

// State reports a peer's health for /debug/peerproxy.
func (h *Health) State(id string) (healthy bool, lastError string, lastErrorAt time.Time) {
	h.mu.Lock()
	defer h.mu.Unlock()
	ph := h.peers[id]
	if ph == nil {
		return true, "", time.Time{}
	}
	return !h.clock.Now().Before(ph.unhealthyUntil), ph.lastError, ph.lastErrorAt
}
