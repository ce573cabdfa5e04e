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
	"slices"
	"sort"
	"time"

	apiserverinternalv1alpha1 "k8s.io/api/apiserverinternal/v1alpha1"
	coordinationv1 "k8s.io/api/coordination/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// Peer is one kube-apiserver as a snapshot sees it.
type Peer struct {
	ID string
	// Address is host:port from its identity lease; empty without one.
	Address string
	// Live: its identity lease was renewed within the live window, and
	// not stopped since (StoppedAtAnnotation).
	Live bool
	// LastRenew is the lease's last renewal; zero when the lease is gone.
	LastRenew time.Time
	// DepartedAt is when it stopped being live; zero while live.
	DepartedAt time.Time
}

// Reachable reports whether a request can be sent to p from the server
// self: p is another server, live, and has an address.
func (p *Peer) Reachable(self string) bool {
	return p.ID != self && p.Live && p.Address != ""
}

// Snapshot is an immutable view of the cluster's kube-apiservers and what
// each serves. Readers never lock: a new snapshot replaces the old whole.
type Snapshot struct {
	Self  string
	Built time.Time

	peers map[string]*Peer // every server known by lease or entry, self included
	// servers lists, per GVR, every server whose entry serves it, departed
	// ones included (the cluster still knows the resource exists).
	servers map[schema.GroupVersionResource][]string
	// live lists, per GVR, the live, addressable peers (not self) serving it.
	live map[schema.GroupVersionResource][]*Peer
	// local is what this server serves; nil until it is known.
	local map[schema.GroupVersionResource]bool
	// extensions are the group/versions of CRDs and aggregated APIs: the
	// same on every server, never proxied.
	extensions map[schema.GroupVersion]bool
}

// ServesLocally reports whether this server serves gvr; known is false
// until this server's own API has been read.
func (s *Snapshot) ServesLocally(gvr schema.GroupVersionResource) (served, known bool) {
	if s == nil || s.local == nil {
		return false, false
	}
	return s.local[gvr], true
}

// LocalKnown reports whether this server's own API has been read.
func (s *Snapshot) LocalKnown() bool { return s != nil && s.local != nil }

// IsExtension reports whether gv belongs to a CRD or an aggregated API.
func (s *Snapshot) IsExtension(gv schema.GroupVersion) bool {
	return s != nil && s.extensions[gv]
}

// Extensions returns the group/versions of CRDs and aggregated APIs. The
// map is shared: do not modify it.
func (s *Snapshot) Extensions() map[schema.GroupVersion]bool {
	if s == nil {
		return nil
	}
	return s.extensions
}

// LivePeers returns the live peers other than this server that serve gvr,
// in ID order. The slice is shared: do not modify it.
func (s *Snapshot) LivePeers(gvr schema.GroupVersionResource) []*Peer {
	if s == nil {
		return nil
	}
	return s.live[gvr]
}

// Known reports whether any server, live or departed within retention,
// registered gvr.
func (s *Snapshot) Known(gvr schema.GroupVersionResource) bool {
	if s == nil {
		return false
	}
	return len(s.servers[gvr]) > 0
}

// Peer returns the server with id.
func (s *Snapshot) Peer(id string) (Peer, bool) {
	if s == nil {
		return Peer{}, false
	}
	p, ok := s.peers[id]
	if !ok {
		return Peer{}, false
	}
	return *p, true
}

// Peers returns every known server in ID order.
func (s *Snapshot) Peers() []Peer {
	if s == nil {
		return nil
	}
	out := make([]Peer, 0, len(s.peers))
	for _, p := range s.peers {
		out = append(out, *p)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

// Servers returns the IDs of every server registered for gvr.
func (s *Snapshot) Servers(gvr schema.GroupVersionResource) []string {
	if s == nil {
		return nil
	}
	return s.servers[gvr]
}

// GVRs returns every registered GVR in a stable order.
func (s *Snapshot) GVRs() []schema.GroupVersionResource {
	if s == nil {
		return nil
	}
	out := make([]schema.GroupVersionResource, 0, len(s.servers))
	for gvr := range s.servers {
		out = append(out, gvr)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].String() < out[j].String() })
	return out
}

// SnapshotInputs is everything a snapshot is built from.
type SnapshotInputs struct {
	Self            string
	Now             time.Time
	LiveWindow      time.Duration
	Leases          []*coordinationv1.Lease
	StorageVersions []*apiserverinternalv1alpha1.StorageVersion
	// MissingSince records, per server ID without a lease, when its lease
	// was first seen missing.
	MissingSince map[string]time.Time
	// Local is what this server serves; nil while unknown.
	Local map[schema.GroupVersionResource]bool
	// Extensions are CRDs' and aggregated APIs' group/versions.
	Extensions map[schema.GroupVersion]bool
	// Discovered lists, per peer, the resources its discovery document
	// lists (merged discovery).
	Discovered map[string][]schema.GroupVersionResource
}

// BuildSnapshot derives the peer table from identity leases and
// StorageVersions. It is a pure function of its inputs.
func BuildSnapshot(in SnapshotInputs) *Snapshot {
	s := &Snapshot{
		Self:    in.Self,
		Built:   in.Now,
		peers:   map[string]*Peer{},
		servers: map[schema.GroupVersionResource][]string{},
		live:    map[schema.GroupVersionResource][]*Peer{},
		// Shared, never modified: the table hands each build fresh maps.
		local:      in.Local,
		extensions: in.Extensions,
	}
	for _, l := range in.Leases {
		p := peerFromLease(l, in.Now, in.LiveWindow)
		s.peers[p.ID] = p
	}
	if s.Self != "" {
		self := s.peerOrDeparted(s.Self, in)
		self.Live, self.DepartedAt = true, time.Time{} // this server is running
	}
	s.addEntries(in)
	s.addDiscovered(in)
	for gvr := range s.servers {
		sort.Strings(s.servers[gvr])
	}
	for gvr := range s.live {
		sort.Slice(s.live[gvr], func(i, j int) bool { return s.live[gvr][i].ID < s.live[gvr][j].ID })
	}
	return s
}

// peerFromLease reads one identity lease.
func peerFromLease(l *coordinationv1.Lease, now time.Time, liveWindow time.Duration) *Peer {
	p := &Peer{ID: l.Name, Address: l.Annotations[PeerAddressAnnotation]}
	if l.Spec.RenewTime != nil {
		p.LastRenew = l.Spec.RenewTime.Time
	}
	// A server of ours keeps its lease when it stops and marks it;
	// its next process's first renewal supersedes the mark.
	stopped := !p.LastRenew.After(StoppedAt(l.Annotations))
	p.Live = !p.LastRenew.IsZero() && now.Sub(p.LastRenew) <= liveWindow && !stopped
	if !p.Live {
		p.DepartedAt = p.LastRenew
	}
	return p
}

// peerOrDeparted is the server id, known by lease or else added as departed: an
// entry whose server has no lease is gone (or never started its lease).
func (s *Snapshot) peerOrDeparted(id string, in SnapshotInputs) *Peer {
	if p, ok := s.peers[id]; ok {
		return p
	}
	p := &Peer{ID: id, DepartedAt: in.Now}
	if t, ok := in.MissingSince[id]; ok {
		p.DepartedAt = t
	}
	s.peers[id] = p
	return p
}

// addEntries routes what StorageVersion entries say each server serves.
func (s *Snapshot) addEntries(in SnapshotInputs) {
	for _, sv := range in.StorageVersions {
		gr, ok := ParseStorageVersionName(sv.Name)
		if !ok {
			continue
		}
		for _, e := range sv.Status.StorageVersions {
			p := s.peerOrDeparted(e.APIServerID, in)
			for _, served := range e.ServedVersions {
				gv, err := schema.ParseGroupVersion(served)
				if err != nil || gv.Group != gr.Group {
					continue
				}
				gvr := gr.WithVersion(gv.Version)
				s.servers[gvr] = appendNew(s.servers[gvr], p.ID)
				if p.Reachable(s.Self) {
					s.live[gvr] = appendNew(s.live[gvr], p)
				}
			}
		}
	}
}

// addDiscovered adds what registration does not cover: resources without
// storage, and any resource a peer lists before its entries are written.
// Only servers the table knows by lease or entry count, never self, and
// never for extensions.
func (s *Snapshot) addDiscovered(in SnapshotInputs) {
	ids := make([]string, 0, len(in.Discovered))
	for id := range in.Discovered {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	for _, id := range ids {
		p, ok := s.peers[id]
		if !ok || id == s.Self {
			continue // only servers known by lease or entry, never self
		}
		for _, gvr := range in.Discovered[id] {
			if s.extensions[gvr.GroupVersion()] {
				continue
			}
			s.servers[gvr] = appendNew(s.servers[gvr], p.ID)
			if p.Reachable(s.Self) {
				s.live[gvr] = appendNew(s.live[gvr], p)
			}
		}
	}
}

// appendNew appends x unless xs holds it already.
func appendNew[T comparable](xs []T, x T) []T {
	if slices.Contains(xs, x) {
		return xs
	}
	return append(xs, x)
}
