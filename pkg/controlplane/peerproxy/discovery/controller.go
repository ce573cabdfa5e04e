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
	"context"
	"maps"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"k8s.io/apimachinery/pkg/runtime/schema"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	"k8s.io/klog/v2"
	"k8s.io/utils/clock"

	"github.com/mvp-apiserver/kube-apiserver/pkg/controlplane/peerproxy/controller"
	"github.com/mvp-apiserver/kube-apiserver/pkg/controlplane/peerproxy/peerclient"
	"github.com/mvp-apiserver/kube-apiserver/pkg/controlplane/peerproxy/peers"
)

// Refresh timing.
const (
	// localRefresh: this server's own documents are read in-process this
	// often when nothing says they changed; an unchanged document costs a
	// 304. Its API changes at run time only with CRDs and APIServices:
	// when the peer table's extensions change, they are read at once and
	// then localBurstReads more times, localBurstInterval apart, as this
	// server's discovery catches up.
	localRefresh       = 10 * time.Second
	localBurstReads    = 10
	localBurstInterval = 200 * time.Millisecond
	// peerRefresh: each live peer is asked this often, with If-None-Match.
	peerRefresh = 10 * time.Second
	// peerRetryAfterError: a peer whose last fetch failed is asked again sooner.
	peerRetryAfterError = 2 * time.Second
)

// The one key of the local reads' queue and of the merges' queue.
const (
	keyLocal = "local" // read this server's own documents
	keyMerge = "merge" // rebuild the merged snapshot if anything changed
)

// Merged holds the current Snapshot; nil until this
// server's own documents were read. The filter reads it, the controller
// replaces it whole.
type Merged struct {
	current atomic.Pointer[Snapshot]
}

// Snapshot returns the merged discovery, or nil.
func (m *Merged) Snapshot() *Snapshot { return m.current.Load() }

// Table is the peer table as discovery reads and feeds it.
type Table interface {
	Snapshot() *peers.Snapshot
	// Subscribe calls f with every new snapshot.
	Subscribe(f func(*peers.Snapshot))
	// SetDiscovered hands the table, per peer, the resources its
	// discovery lists, so the router proxies them too.
	SetDiscovered(byPeer map[string][]schema.GroupVersionResource)
}

// Config is what the discovery controller reads and writes.
type Config struct {
	Self  string
	Table Table
	// Local serves this server's own documents in-process.
	Local http.Handler
	// Peers reaches peers (the verified transport); UserHeader is the
	// front-proxy header peers read the user from.
	Peers      http.RoundTripper
	UserHeader string
	Retention  time.Duration
	Clock      clock.WithTicker
	// Publish receives every new snapshot.
	Publish *Merged
}

// Controller keeps merged discovery up to date, in the controllers'
// shape, with one queue per kind of work: peer IDs to fetch (peers), this
// server's own documents to read (locals), the merge to rebuild (merges).
// The peer table's changes and timers enqueue; workers sync one key at a
// time. Fetches are polled, not watched (discovery has no watch), so each
// fetch schedules its key's next run.
type Controller struct {
	cfg    Config
	local  getFunc
	client *http.Client
	peers  controller.Queue[string]
	locals controller.Queue[string]
	merges controller.Queue[string]
	ready  atomic.Bool
	// localRoot: merged discovery has group/versions only peers serve, so
	// this server's own OpenAPI v3 root is read (localRootDue).
	localRoot atomic.Bool

	mu        sync.Mutex
	localDocs *serverDocs
	state     map[string]*PeerDocs
	addresses map[string]string // the address each peer's docs were read from
	// removed: when each former extension group/version went away.
	removed    map[schema.GroupVersion]time.Time
	extensions map[schema.GroupVersion]bool
	tableKey   string
	dirty      bool
	// rowsDue: a peer failed again as before; the documents stand, the
	// debug rows' error times are republished (refreshRows).
	rowsDue bool
	// localBurst: fast local reads still due since the extensions changed.
	localBurst int
	// discovered: the GVRs last handed to the table, per peer.
	discovered map[string][]schema.GroupVersionResource
}

// NewController builds the controller; nothing runs until Run.
func NewController(cfg Config) *Controller {
	d := &Controller{
		cfg:       cfg,
		local:     inProcess(cfg.Local),
		client:    &http.Client{Transport: cfg.Peers}, // each fetch has its deadline (fetchTimeout)
		peers:     controller.NewQueueWithClock[string]("mvp_peer_discovery", cfg.Clock),
		locals:    controller.NewQueueWithClock[string]("mvp_peer_discovery_local", cfg.Clock),
		merges:    controller.NewQueueWithClock[string]("mvp_peer_discovery_merge", cfg.Clock),
		state:     map[string]*PeerDocs{},
		addresses: map[string]string{},
		removed:   map[schema.GroupVersion]time.Time{},
		dirty:     true,
	}
	cfg.Table.Subscribe(d.tableChanged)
	return d
}

// Ready reports whether this server's documents were read and every peer
// live at the time was asked once.
func (d *Controller) Ready() bool { return d.ready.Load() && d.cfg.Publish.Snapshot() != nil }

// Run fetches from peers with workers (so one slow peer holds up no
// other), reads this server's documents and merges with one each, until
// ctx ends.
func (d *Controller) Run(ctx context.Context, workers int) {
	defer utilruntime.HandleCrashWithContext(ctx)
	ctx = controller.WithName(ctx, "mvp-peer-discovery")
	d.locals.Add(keyLocal)
	d.tableChanged(d.cfg.Table.Snapshot())
	controller.Run(ctx, d.peers, workers, d.syncPeer, nil)
	controller.Run(ctx, d.locals, 1, d.syncLocal, nil)
	controller.Run(ctx, d.merges, 1, d.syncMerge, nil)
	<-ctx.Done()
}

// tableChanged runs on the peer table's worker: a peer that became live or
// moved is asked at once, and the merge looks at liveness again.
func (d *Controller) tableChanged(snap *peers.Snapshot) {
	key := peerKey(snap)
	d.mu.Lock()
	if key != d.tableKey {
		d.tableKey, d.dirty = key, true
	}
	var due []string
	for _, p := range snap.Peers() {
		if !p.Reachable(d.cfg.Self) {
			continue
		}
		if _, asked := d.state[p.ID]; !asked || d.addresses[p.ID] != p.Address {
			due = append(due, p.ID)
		}
	}
	d.mu.Unlock()
	for _, id := range due {
		d.peers.Add(id)
	}
	d.merges.Add(keyMerge)
}

// nextLocalRead is when this server's documents are read next.
func (d *Controller) nextLocalRead() time.Duration {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.localBurst > 0 {
		d.localBurst--
		return localBurstInterval
	}
	return localRefresh
}

// syncLocal reads this server's own documents in-process and schedules
// the next read.
func (d *Controller) syncLocal(ctx context.Context, _ string) error {
	defer d.locals.AddAfter(keyLocal, d.nextLocalRead())
	d.mu.Lock()
	prev := d.localDocs
	d.mu.Unlock()
	docs, changed, err := readDocs(ctx, d.local, prev, nil, localRootDue(d.localRoot.Load))
	if err != nil {
		klog.FromContext(ctx).V(2).Info("Reading this server's own discovery", "err", err)
		return nil // read again at the next turn
	}
	if changed {
		docs.fetchedAt = d.cfg.Clock.Now()
		d.mu.Lock()
		d.localDocs, d.dirty = docs, true
		d.mu.Unlock()
	}
	d.merges.Add(keyMerge)
	return nil
}

// syncPeer reads one live peer's documents and schedules its next read; a
// peer not live now is left alone until the table makes it live again.
func (d *Controller) syncPeer(ctx context.Context, id string) error {
	p, known := d.cfg.Table.Snapshot().Peer(id)
	if !known || !p.Reachable(d.cfg.Self) {
		return nil
	}
	d.mu.Lock()
	var prev *serverDocs
	if st := d.state[id]; st != nil && d.addresses[id] == p.Address {
		prev = st.docs // the same address: ask conditionally
	}
	local := d.localDocs // what the peer lists alike is held once
	d.mu.Unlock()
	var servedHere func(schema.GroupVersion) bool
	if snap := d.cfg.Publish.Snapshot(); snap != nil {
		servedHere = snap.ServesLocally
	}
	fctx, cancel := context.WithTimeout(ctx, fetchTimeout)
	docs, changed, err := readDocs(fctx, fromPeer(d.client, d.cfg.UserHeader, p.Address), prev, local, peerRootDue(d.cfg.Clock.Now(), servedHere))
	cancel()
	if ctx.Err() != nil {
		return nil // this server is stopping: not the peer's fault
	}
	d.record(klog.FromContext(ctx), id, p.Address, docs, changed, err)
	next := peerRefresh
	if err != nil {
		next = peerRetryAfterError
	}
	d.peers.AddAfter(id, next)
	d.merges.Add(keyMerge)
	return nil
}

// record keeps the outcome of one fetch.
func (d *Controller) record(logger klog.Logger, id, address string, docs *serverDocs, changed bool, err error) {
	now := d.cfg.Clock.Now()
	d.mu.Lock()
	defer d.mu.Unlock()
	st := d.state[id]
	if st == nil {
		st = &PeerDocs{}
		d.state[id] = st
	}
	// A moved peer keeps its last data (stale) until its new address answers.
	d.addresses[id] = address
	if err != nil {
		kind := peerclient.Classify(err).Kind
		discoveryFetches.WithLabelValues(kind).Inc()
		countDiscoverySyncError(kind)
		if st.lastError == "" {
			if st.docs != nil {
				logger.Info("Peer discovery fetch failed; keeping its last data, marked stale", "peer", id, "address", address, "err", err)
			} else {
				logger.V(2).Info("Peer discovery fetch failed; retrying", "peer", id, "address", address, "err", err)
			}
		}
		if st.lastError != err.Error() {
			d.dirty = true // the snapshot, and so /debug/peerproxy, shows the latest cause
		} else {
			d.rowsDue = true // the same cause: only its time is new
		}
		st.lastError, st.lastErrorAt = err.Error(), now
		return
	}
	result := "not_modified"
	if changed {
		result = "ok"
	}
	discoveryFetches.WithLabelValues(result).Inc()
	if st.lastError != "" || changed {
		d.dirty = true
	}
	docs.fetchedAt = now
	st.docs, st.lastError, st.lastErrorAt = docs, "", time.Time{}
}

// syncMerge rebuilds the merged snapshot if anything changed.
func (d *Controller) syncMerge(ctx context.Context, _ string) error {
	d.merge(klog.FromContext(ctx))
	return nil
}

// merge rebuilds the snapshot when anything it depends on changed: the
// inputs are copied under the lock, built outside it, and swapped in.
func (d *Controller) merge(logger klog.Logger) {
	snap := d.cfg.Table.Snapshot()
	in, ok := d.inputs(logger, snap)
	if !ok {
		d.refreshRows(snap)
		return
	}
	out, discovered := Build(in)
	prev := d.cfg.Publish.current.Swap(out)
	if want := out.peerOnly > 0; d.localRoot.Swap(want) != want && want {
		d.locals.Add(keyLocal) // read this server's root for the merged one
	}
	if prev == nil || prev.APIsETag != out.APIsETag || prev.APIETag != out.APIETag {
		logger.V(2).Info("Merged discovery changed", "apisETag", out.APIsETag, "peers", len(in.Peers))
	}
	d.mu.Lock()
	same := maps.EqualFunc(d.discovered, discovered, slices.Equal[[]schema.GroupVersionResource])
	d.discovered = discovered
	d.mu.Unlock()
	if !same {
		d.cfg.Table.SetDiscovered(discovered)
	}
}
