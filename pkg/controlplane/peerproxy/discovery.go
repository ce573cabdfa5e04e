package peerproxy

import (
	"bytes"
	"context"
	"crypto/sha512"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	apidiscoveryv2 "k8s.io/api/apidiscovery/v2"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	"k8s.io/klog/v2"
	"k8s.io/kube-openapi/pkg/handler3"
	"k8s.io/utils/clock"
)

// Discovery roots and the OpenAPI v3 root, as served by every kube-apiserver.
const (
	rootAPI     = "/api"
	rootAPIs    = "/apis"
	openAPIRoot = "/openapi/v3"
)

// acceptLocalDiscovery asks for a server's own aggregated discovery, never
// merged with its peers' (upstream 1.37 peers honour profile=nopeer; ours
// also honour the reroute markers sent with it).
const acceptLocalDiscovery = "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList;profile=nopeer"

// Refresh timing.
const (
	// localRefresh: this server's own documents are read in-process this
	// often; an unchanged document costs a 304.
	localRefresh = time.Second
	// peerRefresh: each live peer is asked this often, with If-None-Match.
	peerRefresh = 10 * time.Second
	// peerRetryAfterError: a peer whose last fetch failed is asked again sooner.
	peerRetryAfterError = 2 * time.Second
	// fetchTimeout bounds one peer fetch (three documents).
	fetchTimeout = 5 * time.Second
)

// discoveryUser is the front-proxy identity discovery fetches carry: any
// authenticated user may read discovery (RBAC's system:discovery).
const discoveryUser = "system:kube-apiserver-peer-discovery"

// rootDoc is one aggregated discovery document and its ETag.
type rootDoc struct {
	groups []apidiscoveryv2.APIGroupDiscovery
	etag   string
}

// serverDocs is what one server's discovery looked like when last read.
type serverDocs struct {
	api, apis rootDoc
	// openAPI maps OpenAPI v3 paths ("apis/batch/v1") to their URLs.
	openAPI     map[string]string
	openAPIETag string
	fetchedAt   time.Time
}

// peerState is the discovery controller's record of one peer.
type peerState struct {
	address     string
	docs        *serverDocs // nil until a fetch succeeded
	lastAttempt time.Time
	lastError   string
	lastErrorAt time.Time
	inFlight    bool
}

// DiscoverySnapshot is an immutable view of the cluster's merged
// discovery. Readers never lock.
type DiscoverySnapshot struct {
	Built time.Time
	// API and APIs are the merged /api and /apis documents; the ETags
	// change only when their content does.
	API, APIs         *apidiscoveryv2.APIGroupDiscoveryList
	APIETag, APIsETag string
	// GroupList is the unaggregated /apis document.
	GroupList *metav1.APIGroupList

	groups map[string]*apidiscoveryv2.APIGroupDiscovery // merged /apis groups by name
	// local: the group/versions this server's own documents list.
	local map[schema.GroupVersion]bool
	// localGroups: the versions of each group this server serves.
	localGroups map[string][]string
	// peersFor: group/versions this server does not serve, with the live
	// peers that do, in ID order.
	peersFor map[schema.GroupVersion][]*Peer
	// openAPI: OpenAPI v3 paths of group/versions only peers serve.
	openAPI map[string]string
	peers   []DiscoveryPeer
}

// ServesLocally reports whether this server itself serves gv.
func (s *DiscoverySnapshot) ServesLocally(gv schema.GroupVersion) bool { return s.local[gv] }

// Merged reports whether the merged discovery lists gv.
func (s *DiscoverySnapshot) Merged(gv schema.GroupVersion) bool {
	g := s.groups[gv.Group]
	if gv.Group == "" {
		for i := range s.API.Items {
			if s.API.Items[i].Name == "" {
				g = &s.API.Items[i]
			}
		}
	}
	if g == nil {
		return false
	}
	for _, v := range g.Versions {
		if v.Version == gv.Version {
			return true
		}
	}
	return false
}

// PeersFor returns the live peers serving gv when this server does not.
func (s *DiscoverySnapshot) PeersFor(gv schema.GroupVersion) []*Peer { return s.peersFor[gv] }

// Peers describes each peer's discovery data, in ID order.
func (s *DiscoverySnapshot) Peers() []DiscoveryPeer { return s.peers }

// DiscoveryPeer is one peer's discovery freshness (debug document).
type DiscoveryPeer struct {
	ID          string     `json:"id"`
	Fresh       bool       `json:"fresh"`
	HasData     bool       `json:"hasData"`
	FetchedAt   *time.Time `json:"fetchedAt,omitempty"`
	AgeSeconds  float64    `json:"ageSeconds,omitempty"`
	Groups      int        `json:"groups"`
	LastError   string     `json:"lastError,omitempty"`
	LastErrorAt *time.Time `json:"lastErrorAt,omitempty"`
}

// PeerDiscovery reads this server's and its peers' local discovery and
// keeps the merged DiscoverySnapshot up to date.
type PeerDiscovery struct {
	self   string
	table  *PeerTable
	local  http.Handler // this server's handler, without authentication
	client *http.Client // the verified peer transport
	// userHeader carries discoveryUser: the front-proxy user header.
	userHeader string
	clock      clock.WithTicker
	retention  time.Duration

	current atomic.Pointer[DiscoverySnapshot]
	wake    chan struct{}
	ready   atomic.Bool

	mu        sync.Mutex
	localDocs *serverDocs
	peers     map[string]*peerState
	// removed: when each former extension group/version went away.
	removed    map[schema.GroupVersion]time.Time
	extensions map[schema.GroupVersion]bool
	tableKey   string
	dirty      bool
	// discovered: the GVRs last handed to the table, per peer.
	discovered map[string][]schema.GroupVersionResource
}

// NewPeerDiscovery builds the controller; local serves this server's own
// documents in-process, rt reaches peers, and userHeader is the
// front-proxy header peers read the user from.
func NewPeerDiscovery(self string, table *PeerTable, local http.Handler, rt http.RoundTripper, userHeader string, retention time.Duration, clk clock.WithTicker) *PeerDiscovery {
	d := &PeerDiscovery{
		self:       self,
		table:      table,
		local:      local,
		client:     &http.Client{Transport: rt, Timeout: fetchTimeout},
		userHeader: userHeader,
		clock:      clk,
		retention:  retention,
		wake:       make(chan struct{}, 1),
		peers:      map[string]*peerState{},
		removed:    map[schema.GroupVersion]time.Time{},
		dirty:      true,
	}
	table.Subscribe(func(*Snapshot) { d.poke() })
	return d
}

// Snapshot returns the merged discovery, nil until this server's own
// documents were read.
func (d *PeerDiscovery) Snapshot() *DiscoverySnapshot { return d.current.Load() }

// Ready reports whether every peer that was live at start-up was asked once.
func (d *PeerDiscovery) Ready() bool { return d.ready.Load() }

func (d *PeerDiscovery) poke() {
	select {
	case d.wake <- struct{}{}:
	default:
	}
}

// Run refreshes until ctx ends.
func (d *PeerDiscovery) Run(ctx context.Context) {
	defer utilruntime.HandleCrash()
	tick := d.clock.NewTicker(localRefresh)
	defer tick.Stop()
	for {
		d.refreshLocal(ctx)
		d.fetchDuePeers(ctx)
		d.rebuild()
		select {
		case <-ctx.Done():
			return
		case <-tick.C():
		case <-d.wake:
		}
	}
}

// refreshLocal reads this server's own documents in-process.
func (d *PeerDiscovery) refreshLocal(ctx context.Context) {
	d.mu.Lock()
	prev := d.localDocs
	d.mu.Unlock()
	docs, changed, err := readDocs(ctx, d.localGet, prev)
	if err != nil {
		klog.V(2).InfoS("Reading this server's own discovery", "err", err)
		return
	}
	if changed {
		d.mu.Lock()
		d.localDocs = docs
		d.dirty = true
		d.mu.Unlock()
	}
}

// localGet serves a document request in-process.
func (d *PeerDiscovery) localGet(req *http.Request) (*http.Response, error) {
	rec := &recorder{header: http.Header{}}
	d.local.ServeHTTP(rec, req)
	return rec.response(), nil
}

// fetchDuePeers starts a fetch for every live peer whose data is due.
func (d *PeerDiscovery) fetchDuePeers(ctx context.Context) {
	snap := d.table.Snapshot()
	now := d.clock.Now()
	d.mu.Lock()
	defer d.mu.Unlock()
	key := peerKey(snap)
	if key != d.tableKey {
		d.tableKey, d.dirty = key, true
	}
	pending := 0
	for _, p := range snap.Peers() {
		if p.ID == d.self || !p.Live || p.Address == "" {
			continue
		}
		st := d.peers[p.ID]
		if st == nil {
			st = &peerState{}
			d.peers[p.ID] = st
		}
		if st.lastAttempt.IsZero() {
			pending++
		}
		if st.inFlight {
			continue
		}
		due := st.lastAttempt.IsZero() || st.address != p.Address || now.Sub(st.lastAttempt) >= peerRefresh ||
			(st.lastError != "" && now.Sub(st.lastAttempt) >= peerRetryAfterError)
		if !due {
			continue
		}
		prev := st.docs
		if st.address != p.Address {
			prev = nil // a new address: read everything afresh
		}
		st.inFlight, st.address = true, p.Address
		go d.fetchPeer(ctx, p.ID, p.Address, prev)
	}
	if pending == 0 && snap.LocalKnown() && d.localDocs != nil {
		d.ready.Store(true)
	}
}

// fetchPeer reads one peer's documents and records the outcome.
func (d *PeerDiscovery) fetchPeer(parent context.Context, id, address string, prev *serverDocs) {
	defer utilruntime.HandleCrash()
	ctx, cancel := context.WithTimeout(parent, fetchTimeout)
	defer cancel()
	get := func(req *http.Request) (*http.Response, error) {
		req.URL.Scheme, req.URL.Host = "https", address
		req.Header.Set(d.userHeader, discoveryUser)
		req.Header.Set(HeaderRerouted, "true")
		req.Header.Set(HeaderPeerProxied, "true")
		return d.client.Do(req)
	}
	docs, changed, err := readDocs(ctx, get, prev)
	if parent.Err() != nil {
		return // this server is stopping: not the peer's fault
	}
	now := d.clock.Now()

	d.mu.Lock()
	defer d.mu.Unlock()
	st := d.peers[id]
	if st == nil {
		return // forgotten meanwhile
	}
	st.inFlight = false
	st.lastAttempt = now
	if err != nil {
		reason, _ := classify(err)
		if strings.HasPrefix(err.Error(), badResponse) {
			reason = "bad_response"
		}
		discoveryFetches.WithLabelValues(reason).Inc()
		countDiscoverySyncError(reason)
		if st.lastError == "" {
			if st.docs != nil {
				klog.InfoS("Peer discovery fetch failed; keeping its last data, marked stale", "peer", id, "address", address, "err", err)
			} else {
				klog.V(2).InfoS("Peer discovery fetch failed; retrying", "peer", id, "address", address, "err", err)
			}
			d.dirty = true
		}
		st.lastError, st.lastErrorAt = err.Error(), now
		d.poke()
		return
	}
	if changed {
		discoveryFetches.WithLabelValues("ok").Inc()
	} else {
		discoveryFetches.WithLabelValues("not_modified").Inc()
	}
	if st.lastError != "" || changed {
		d.dirty = true
	}
	st.lastError, st.lastErrorAt = "", time.Time{}
	docs.fetchedAt = now
	st.docs = docs
	d.poke()
}

// badResponse prefixes errors about what a peer answered (as opposed to
// failing to reach it).
const badResponse = "unexpected discovery response"

// getFunc sends a document request (its URL holds only the path).
type getFunc func(*http.Request) (*http.Response, error)

// docRequest is a conditional GET of one document.
func docRequest(ctx context.Context, path, accept, etag string) (*http.Request, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, path, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", accept)
	if etag != "" {
		req.Header.Set("If-None-Match", etag)
	}
	return req, nil
}

// getDoc sends docRequest(ctx, path, accept, etag) with get.
func getDoc(ctx context.Context, get getFunc, path, accept, etag string) (*http.Response, error) {
	req, err := docRequest(ctx, path, accept, etag)
	if err != nil {
		return nil, err
	}
	return get(req)
}

// readDocs reads the /api, /apis and OpenAPI v3 root documents with
// conditional requests; changed is false when all three were unchanged.
func readDocs(ctx context.Context, get getFunc, prev *serverDocs) (*serverDocs, bool, error) {
	next := &serverDocs{}
	if prev != nil {
		*next = *prev
	}
	changed := prev == nil
	for _, root := range []struct {
		path string
		doc  *rootDoc
	}{{rootAPI, &next.api}, {rootAPIs, &next.apis}} {
		resp, err := getDoc(ctx, get, root.path, acceptLocalDiscovery, root.doc.etag)
		if err != nil {
			return nil, false, err
		}
		body, err := readBody(resp)
		if err != nil {
			return nil, false, err
		}
		if resp.StatusCode == http.StatusNotModified && prev != nil {
			continue
		}
		if resp.StatusCode != http.StatusOK {
			return nil, false, fmt.Errorf("%s: GET %s answered %d: %.200s", badResponse, root.path, resp.StatusCode, body)
		}
		if ct := resp.Header.Get("Content-Type"); !strings.Contains(ct, "as=APIGroupDiscoveryList") || !strings.Contains(ct, "v=v2") {
			return nil, false, fmt.Errorf("%s: GET %s answered %q, not aggregated discovery v2", badResponse, root.path, ct)
		}
		var list apidiscoveryv2.APIGroupDiscoveryList
		if err := json.Unmarshal(body, &list); err != nil {
			return nil, false, fmt.Errorf("%s: decoding %s: %w", badResponse, root.path, err)
		}
		*root.doc = rootDoc{groups: list.Items, etag: resp.Header.Get("ETag")}
		changed = true
	}

	resp, err := getDoc(ctx, get, openAPIRoot, "application/json", next.openAPIETag)
	if err != nil {
		return nil, false, err
	}
	body, err := readBody(resp)
	if err != nil {
		return nil, false, err
	}
	switch resp.StatusCode {
	case http.StatusNotModified:
	case http.StatusNotFound: // OpenAPI v3 turned off there
		if next.openAPI != nil {
			changed = true
		}
		next.openAPI, next.openAPIETag = nil, ""
	case http.StatusOK:
		var root handler3.OpenAPIV3Discovery
		if err := json.Unmarshal(body, &root); err != nil {
			return nil, false, fmt.Errorf("%s: decoding %s: %w", badResponse, openAPIRoot, err)
		}
		next.openAPI = make(map[string]string, len(root.Paths))
		for p, gv := range root.Paths {
			next.openAPI[p] = gv.ServerRelativeURL
		}
		next.openAPIETag = resp.Header.Get("ETag")
		changed = true
	default:
		return nil, false, fmt.Errorf("%s: GET %s answered %d: %.200s", badResponse, openAPIRoot, resp.StatusCode, body)
	}
	return next, changed, nil
}

func readBody(resp *http.Response) ([]byte, error) {
	defer resp.Body.Close()
	return io.ReadAll(io.LimitReader(resp.Body, 64<<20))
}

// rebuild recomputes the merged snapshot when anything it depends on changed.
func (d *PeerDiscovery) rebuild() {
	snap := d.table.Snapshot()
	now := d.clock.Now()
	d.mu.Lock()
	defer d.mu.Unlock()
	d.trackExtensions(snap, now)
	d.forgetDeparted(snap, now)
	d.recordStaleness(now)
	if !d.dirty || d.localDocs == nil {
		return
	}
	d.dirty = false

	rules := MergeRules{Extensions: d.extensions, Removed: d.removed}
	self := DiscoverySource{Server: d.self, Local: true, Fresh: true, FetchedAt: d.localDocs.fetchedAt}
	apiSrcs := []DiscoverySource{withGroups(self, d.localDocs.api.groups)}
	apisSrcs := []DiscoverySource{withGroups(self, d.localDocs.apis.groups)}
	ids := make([]string, 0, len(d.peers))
	for id, st := range d.peers {
		if st.docs != nil {
			ids = append(ids, id)
		}
	}
	sort.Strings(ids)
	discovered := map[string][]schema.GroupVersionResource{}
	peerSources := map[string]DiscoverySource{}
	peerGVs := map[string][]schema.GroupVersion{}
	for _, id := range ids {
		st := d.peers[id]
		p, _ := snap.Peer(id)
		src := DiscoverySource{Server: id, Fresh: p.Live && st.lastError == "", FetchedAt: st.docs.fetchedAt}
		peerSources[id] = src
		apiSrcs = append(apiSrcs, withGroups(src, st.docs.api.groups))
		apisSrcs = append(apisSrcs, withGroups(src, st.docs.apis.groups))
		peerGVs[id], discovered[id] = contributed(&src, rules, st.docs)
	}

	out := &DiscoverySnapshot{
		Built:       now,
		groups:      map[string]*apidiscoveryv2.APIGroupDiscovery{},
		local:       map[schema.GroupVersion]bool{},
		localGroups: map[string][]string{},
		peersFor:    map[schema.GroupVersion][]*Peer{},
		openAPI:     map[string]string{},
	}
	out.API, out.APIETag = discoveryList(MergeDiscovery(apiSrcs, rules))
	out.APIs, out.APIsETag = discoveryList(MergeDiscovery(apisSrcs, rules))
	out.GroupList = APIGroupList(out.APIs.Items)
	for i := range out.APIs.Items {
		out.groups[out.APIs.Items[i].Name] = &out.APIs.Items[i]
	}
	eachVersion(d.localDocs, func(gv schema.GroupVersion, _ *apidiscoveryv2.APIVersionDiscovery) {
		out.local[gv] = true
		out.localGroups[gv.Group] = append(out.localGroups[gv.Group], gv.Version)
	})
	fromFresh := map[string]bool{}
	for _, id := range ids {
		st, src := d.peers[id], peerSources[id]
		p, _ := snap.Peer(id)
		routable := p.Live && p.Address != ""
		for _, gv := range peerGVs[id] {
			if out.local[gv] {
				continue
			}
			if routable {
				out.peersFor[gv] = append(out.peersFor[gv], &p)
			}
			// The first fresh peer's OpenAPI URL (IDs are sorted), else
			// the first stale one's.
			path := openAPIPath(gv)
			if u, ok := st.docs.openAPI[path]; ok && !fromFresh[path] {
				if _, had := out.openAPI[path]; !had || src.Fresh {
					out.openAPI[path], fromFresh[path] = u, src.Fresh
				}
			}
		}
	}
	for _, id := range ids {
		st := d.peers[id]
		dp := DiscoveryPeer{ID: id, Fresh: peerSources[id].Fresh, HasData: true, Groups: len(st.docs.api.groups) + len(st.docs.apis.groups)}
		t := st.docs.fetchedAt
		dp.FetchedAt, dp.AgeSeconds = &t, now.Sub(t).Seconds()
		if st.lastError != "" {
			at := st.lastErrorAt
			dp.LastError, dp.LastErrorAt = st.lastError, &at
		}
		out.peers = append(out.peers, dp)
	}
	for id, st := range d.peers {
		if st.docs == nil && st.lastError != "" {
			at := st.lastErrorAt
			out.peers = append(out.peers, DiscoveryPeer{ID: id, LastError: st.lastError, LastErrorAt: &at})
		}
	}
	sort.Slice(out.peers, func(i, j int) bool { return out.peers[i].ID < out.peers[j].ID })

	prev := d.current.Swap(out)
	if prev == nil || prev.APIsETag != out.APIsETag || prev.APIETag != out.APIETag {
		klog.V(2).InfoS("Merged discovery changed", "apisETag", out.APIsETag, "peers", len(ids))
	}
	if !sameDiscovered(d.discovered, discovered) {
		d.discovered = discovered
		d.table.SetDiscovered(discovered)
	}
}

// trackExtensions records when extension group/versions go away, so a
// peer's older document cannot bring a deleted CRD back.
func (d *PeerDiscovery) trackExtensions(snap *Snapshot, now time.Time) {
	cur := snap.Extensions()
	for gv := range d.extensions {
		if !cur[gv] {
			d.removed[gv] = now
			d.dirty = true
		}
	}
	for gv, at := range d.removed {
		if cur[gv] || now.Sub(at) > d.retention+removedExtensionLag {
			delete(d.removed, gv)
			d.dirty = true
		}
	}
	if len(cur) != len(d.extensions) {
		d.dirty = true
	}
	d.extensions = cur
}

// forgetDeparted drops a peer's data once the retention window since it
// departed (or since its data was last read) has passed, or when the peer
// table no longer knows it.
func (d *PeerDiscovery) forgetDeparted(snap *Snapshot, now time.Time) {
	for id, st := range d.peers {
		p, known := snap.Peer(id)
		expired := !known ||
			(!p.Live && !p.DepartedAt.IsZero() && now.Sub(p.DepartedAt) > d.retention) ||
			(st.docs != nil && now.Sub(st.docs.fetchedAt) > d.retention)
		if !expired || st.inFlight {
			continue
		}
		if st.docs != nil {
			klog.InfoS("Forgetting a departed peer's discovery data", "peer", id, "fetchedAt", st.docs.fetchedAt)
		}
		delete(d.peers, id)
		discoveryStaleness.DeleteLabelValues(id)
		d.dirty = true
	}
}

// recordStaleness sets each peer's data age.
func (d *PeerDiscovery) recordStaleness(now time.Time) {
	for id, st := range d.peers {
		if st.docs != nil {
			discoveryStaleness.WithLabelValues(id).Set(now.Sub(st.docs.fetchedAt).Seconds())
		}
	}
}

func withGroups(src DiscoverySource, groups []apidiscoveryv2.APIGroupDiscovery) DiscoverySource {
	src.Groups = groups
	return src
}

// eachVersion calls f with every group/version of a server's /api and
// /apis documents.
func eachVersion(docs *serverDocs, f func(gv schema.GroupVersion, v *apidiscoveryv2.APIVersionDiscovery)) {
	for _, root := range [][]apidiscoveryv2.APIGroupDiscovery{docs.api.groups, docs.apis.groups} {
		for _, g := range root {
			for i := range g.Versions {
				f(schema.GroupVersion{Group: g.Name, Version: g.Versions[i].Version}, &g.Versions[i])
			}
		}
	}
}

// contributed lists the group/versions a peer's documents contribute to
// the merge, and their resources (for the router).
func contributed(src *DiscoverySource, rules MergeRules, docs *serverDocs) (gvs []schema.GroupVersion, gvrs []schema.GroupVersionResource) {
	eachVersion(docs, func(gv schema.GroupVersion, v *apidiscoveryv2.APIVersionDiscovery) {
		if rules.skip(src, gv) {
			return
		}
		gvs = append(gvs, gv)
		for _, r := range v.Resources {
			gvrs = append(gvrs, gv.WithResource(r.Resource))
		}
	})
	return gvs, gvrs
}

func sameDiscovered(a, b map[string][]schema.GroupVersionResource) bool {
	if len(a) != len(b) {
		return false
	}
	for id, x := range a {
		y, ok := b[id]
		if !ok || len(x) != len(y) {
			return false
		}
		for i := range x {
			if x[i] != y[i] {
				return false
			}
		}
	}
	return true
}

// openAPIPath is a group/version's path in the OpenAPI v3 root document.
func openAPIPath(gv schema.GroupVersion) string {
	if gv.Group == "" {
		return "api/" + gv.Version
	}
	return "apis/" + gv.Group + "/" + gv.Version
}

// discoveryList wraps merged groups as a document and computes its ETag
// from the content alone, the way upstream computes its own.
func discoveryList(groups []apidiscoveryv2.APIGroupDiscovery) (*apidiscoveryv2.APIGroupDiscoveryList, string) {
	list := &apidiscoveryv2.APIGroupDiscoveryList{
		TypeMeta: metav1.TypeMeta{Kind: "APIGroupDiscoveryList", APIVersion: apidiscoveryv2.SchemeGroupVersion.String()},
		Items:    groups,
	}
	b, err := json.Marshal(groups)
	if err != nil {
		utilruntime.HandleError(fmt.Errorf("hashing merged discovery: %w", err))
	}
	return list, fmt.Sprintf("%X", sha512.Sum512(b))
}

// peerKey summarises the table's peers; a change means fetches may be due.
func peerKey(snap *Snapshot) string {
	var b strings.Builder
	for _, p := range snap.Peers() {
		fmt.Fprintf(&b, "%s=%s/%t;", p.ID, p.Address, p.Live)
	}
	return b.String()
}

// recorder captures an in-process response.
type recorder struct {
	header http.Header
	code   int
	body   bytes.Buffer
}

func (r *recorder) Header() http.Header { return r.header }
func (r *recorder) WriteHeader(code int) {
	if r.code == 0 {
		r.code = code
	}
}
func (r *recorder) Write(b []byte) (int, error) {
	if r.code == 0 {
		r.code = http.StatusOK
	}
	return r.body.Write(b)
}
func (r *recorder) response() *http.Response {
	if r.code == 0 {
		r.code = http.StatusOK
	}
	return &http.Response{StatusCode: r.code, Header: r.header, Body: io.NopCloser(&r.body)}
}
