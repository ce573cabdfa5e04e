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

package discovery

import (
	"fmt"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/klog/v2"

	"github.com/mvp-apiserver/kube-apiserver/pkg/controlplane/peerproxy/peers"
)

// inputs does the merge's bookkeeping and copies what a build needs; ok
// is false when nothing changed since the last build.
func (d *Controller) inputs(logger klog.Logger, snap *peers.Snapshot) (Inputs, bool) {
	now := d.cfg.Clock.Now()
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.trackExtensions(snap, now) {
		// This server's own documents change with its extensions.
		d.localBurst = localBurstReads
		d.locals.Add(keyLocal)
	}
	d.forgetDeparted(logger, snap, now)
	d.recordStaleness(now)
	if d.localDocs != nil && snap.LocalKnown() && d.allAsked(snap) {
		d.ready.Store(true)
	}
	if !d.dirty || d.localDocs == nil {
		return Inputs{}, false
	}
	d.dirty, d.rowsDue = false, false
	in := Inputs{Self: d.cfg.Self, Now: now, Table: snap, Local: d.localDocs,
		Peers: make(map[string]PeerDocs, len(d.state)),
		Rules: MergeRules{Extensions: d.extensions, Removed: make(map[schema.GroupVersion]time.Time, len(d.removed))}}
	for id, st := range d.state {
		in.Peers[id] = *st
	}
	for gv, at := range d.removed {
		in.Rules.Removed[gv] = at
	}
	return in, true
}

// refreshRows republishes the current snapshot with new debug rows when
// only a peer's error time changed since it was built: the same failure
// every few seconds costs no rebuild of the documents, and
// /debug/peerproxy still says when the peer last failed.
func (d *Controller) refreshRows(snap *peers.Snapshot) {
	cur := d.cfg.Publish.Snapshot()
	d.mu.Lock()
	defer d.mu.Unlock()
	if !d.rowsDue || cur == nil {
		return
	}
	d.rowsDue = false
	in := Inputs{Now: d.cfg.Clock.Now(), Table: snap, Peers: make(map[string]PeerDocs, len(d.state))}
	for id, st := range d.state {
		in.Peers[id] = *st
	}
	next := *cur
	next.peers = debugPeers(in)
	d.cfg.Publish.current.Store(&next)
}

// allAsked: every live, addressed peer has been asked at least once.
func (d *Controller) allAsked(snap *peers.Snapshot) bool {
	for _, p := range snap.Peers() {
		if !p.Reachable(d.cfg.Self) {
			continue
		}
		if _, asked := d.state[p.ID]; !asked {
			return false
		}
	}
	return true
}

// trackExtensions records when extension group/versions go away, so a
// peer's older document cannot bring a deleted CRD back, and reports
// whether the set changed.
func (d *Controller) trackExtensions(snap *peers.Snapshot, now time.Time) bool {
	cur := snap.Extensions()
	changed := len(cur) != len(d.extensions)
	for gv := range d.extensions {
		if !cur[gv] {
			d.removed[gv] = now
			changed = true
		}
	}
	for gv, at := range d.removed {
		if cur[gv] || now.Sub(at) > d.cfg.Retention+removedExtensionLag {
			delete(d.removed, gv)
			d.dirty = true
		}
	}
	d.extensions = cur
	d.dirty = d.dirty || changed
	return changed
}

// forgetDeparted drops a peer's data once the retention window since it
// departed (or since its data was last read) has passed, or when the peer
// table no longer knows it.
func (d *Controller) forgetDeparted(logger klog.Logger, snap *peers.Snapshot, now time.Time) {
	for id, st := range d.state {
		p, known := snap.Peer(id)
		expired := !known ||
			(!p.Live && !p.DepartedAt.IsZero() && now.Sub(p.DepartedAt) > d.cfg.Retention) ||
			(st.docs != nil && now.Sub(st.docs.fetchedAt) > d.cfg.Retention)
		if !expired {
			continue
		}
		if st.docs != nil {
			logger.Info("Forgetting a departed peer's discovery data", "peer", id, "fetchedAt", st.docs.fetchedAt)
		}
		delete(d.state, id)
		delete(d.addresses, id)
		discoveryStaleness.DeleteLabelValues(id)
		d.dirty = true
	}
}

// recordStaleness sets each peer's data age.
func (d *Controller) recordStaleness(now time.Time) {
	for id, st := range d.state {
		if st.docs != nil {
			discoveryStaleness.WithLabelValues(id).Set(now.Sub(st.docs.fetchedAt).Seconds())
		}
	}
}

// peerKey summarises the table's peers; a change means fetches may be due.
func peerKey(snap *peers.Snapshot) string {
	var b strings.Builder
	for _, p := range snap.Peers() {
		fmt.Fprintf(&b, "%s=%s/%t;", p.ID, p.Address, p.Live)
	}
	return b.String()
}
