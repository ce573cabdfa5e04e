package peerproxy

import (
	"reflect"
	"testing"
	"time"

	apiserverinternalv1alpha1 "k8s.io/api/apiserverinternal/v1alpha1"
	coordinationv1 "k8s.io/api/coordination/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

var t0 = time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)

func lease(id, addr string, renewedAgo time.Duration) *coordinationv1.Lease {
	l := &coordinationv1.Lease{ObjectMeta: metav1.ObjectMeta{Name: id, Namespace: "kube-system"}}
	if addr != "" {
		l.Annotations = map[string]string{PeerAddressAnnotation: addr}
	}
	if renewedAgo >= 0 {
		rt := metav1.NewMicroTime(t0.Add(-renewedAgo))
		l.Spec.RenewTime = &rt
	}
	return l
}

// stoppedLease marks l stopped ago before t0.
func stoppedLease(l *coordinationv1.Lease, ago time.Duration) *coordinationv1.Lease {
	if l.Annotations == nil {
		l.Annotations = map[string]string{}
	}
	l.Annotations[StoppedAtAnnotation] = t0.Add(-ago).Format(time.RFC3339Nano)
	return l
}

func sv(name string, entries ...Entry) *apiserverinternalv1alpha1.StorageVersion {
	return &apiserverinternalv1alpha1.StorageVersion{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Status:     apiserverinternalv1alpha1.StorageVersionStatus{StorageVersions: entries},
	}
}

func entry(id string, served ...string) Entry {
	return Entry{APIServerID: id, EncodingVersion: served[0], DecodableVersions: served, ServedVersions: served}
}

var (
	jobsV1   = schema.GroupVersionResource{Group: "batch", Version: "v1", Resource: "jobs"}
	deployV1 = schema.GroupVersionResource{Group: "apps", Version: "v1", Resource: "deployments"}
	podsV1   = schema.GroupVersionResource{Version: "v1", Resource: "pods"}
	flowV1b3 = schema.GroupVersionResource{Group: "flowcontrol.apiserver.k8s.io", Version: "v1beta3", Resource: "flowschemas"}
)

func TestBuildSnapshot(t *testing.T) {
	type want struct {
		live  []string // IDs of LivePeers(gvr)
		known bool
	}
	tests := []struct {
		name    string
		leases  []*coordinationv1.Lease
		svs     []*apiserverinternalv1alpha1.StorageVersion
		missing map[string]time.Time
		want    map[schema.GroupVersionResource]want
		peers   map[string]Peer // checked fields: Live, Address, DepartedAt
	}{
		{
			name:   "peer serving a resource self lacks is routed to",
			leases: []*coordinationv1.Lease{lease("a", "10.0.0.1:6443", time.Second), lease("b", "10.0.0.2:6443", 5*time.Second)},
			svs: []*apiserverinternalv1alpha1.StorageVersion{
				sv("batch.jobs", entry("b", "batch/v1")),
				sv("apps.deployments", entry("a", "apps/v1"), entry("b", "apps/v1")),
			},
			want: map[schema.GroupVersionResource]want{
				jobsV1:   {live: []string{"b"}, known: true},
				deployV1: {live: []string{"b"}, known: true}, // self is never a peer
				podsV1:   {known: false},
			},
		},
		{
			name:   "core group name maps to the empty group",
			leases: []*coordinationv1.Lease{lease("a", "x:1", 0), lease("b", "y:1", 0)},
			svs:    []*apiserverinternalv1alpha1.StorageVersion{sv("core.pods", entry("b", "v1"))},
			want:   map[schema.GroupVersionResource]want{podsV1: {live: []string{"b"}, known: true}},
		},
		{
			name:   "dotted group parses on the last dot",
			leases: []*coordinationv1.Lease{lease("a", "x:1", 0), lease("b", "y:1", 0)},
			svs: []*apiserverinternalv1alpha1.StorageVersion{sv("flowcontrol.apiserver.k8s.io.flowschemas",
				entry("b", "flowcontrol.apiserver.k8s.io/v1", "flowcontrol.apiserver.k8s.io/v1beta3"))},
			want: map[schema.GroupVersionResource]want{flowV1b3: {live: []string{"b"}, known: true}},
		},
		{
			name:   "renewal older than the live window is not live but still known",
			leases: []*coordinationv1.Lease{lease("a", "x:1", 0), lease("b", "y:1", 31*time.Second)},
			svs:    []*apiserverinternalv1alpha1.StorageVersion{sv("batch.jobs", entry("b", "batch/v1"))},
			want:   map[schema.GroupVersionResource]want{jobsV1: {known: true}},
			peers:  map[string]Peer{"b": {Live: false, Address: "y:1", DepartedAt: t0.Add(-31 * time.Second)}},
		},
		{
			name:   "renewal exactly at the window edge is live",
			leases: []*coordinationv1.Lease{lease("a", "x:1", 0), lease("b", "y:1", 30*time.Second)},
			svs:    []*apiserverinternalv1alpha1.StorageVersion{sv("batch.jobs", entry("b", "batch/v1"))},
			want:   map[schema.GroupVersionResource]want{jobsV1: {live: []string{"b"}, known: true}},
		},
		{
			name:    "entry without a lease (graceful shutdown) is known, not live, departed when first missed",
			leases:  []*coordinationv1.Lease{lease("a", "x:1", 0)},
			svs:     []*apiserverinternalv1alpha1.StorageVersion{sv("batch.jobs", entry("b", "batch/v1"))},
			missing: map[string]time.Time{"b": t0.Add(-time.Minute)},
			want:    map[schema.GroupVersionResource]want{jobsV1: {known: true}},
			peers:   map[string]Peer{"b": {Live: false, DepartedAt: t0.Add(-time.Minute)}},
		},
		{
			name:   "lease marked stopped after its last renewal (graceful stop of ours) is not live",
			leases: []*coordinationv1.Lease{lease("a", "x:1", 0), stoppedLease(lease("b", "y:1", 2*time.Second), time.Second)},
			svs:    []*apiserverinternalv1alpha1.StorageVersion{sv("batch.jobs", entry("b", "batch/v1"))},
			want:   map[schema.GroupVersionResource]want{jobsV1: {known: true}},
			peers:  map[string]Peer{"b": {Live: false, Address: "y:1", DepartedAt: t0.Add(-2 * time.Second)}},
		},
		{
			name:   "a renewal after the stop mark (restarted) is live again",
			leases: []*coordinationv1.Lease{lease("a", "x:1", 0), stoppedLease(lease("b", "y:1", time.Second), 2*time.Second)},
			svs:    []*apiserverinternalv1alpha1.StorageVersion{sv("batch.jobs", entry("b", "batch/v1"))},
			want:   map[schema.GroupVersionResource]want{jobsV1: {live: []string{"b"}, known: true}},
		},
		{
			name:   "live peer without an address cannot be routed to",
			leases: []*coordinationv1.Lease{lease("a", "x:1", 0), lease("b", "", 0)},
			svs:    []*apiserverinternalv1alpha1.StorageVersion{sv("batch.jobs", entry("b", "batch/v1"))},
			want:   map[schema.GroupVersionResource]want{jobsV1: {known: true}},
		},
		{
			name:   "lease never renewed is not live",
			leases: []*coordinationv1.Lease{lease("a", "x:1", 0), lease("b", "y:1", -1)},
			svs:    []*apiserverinternalv1alpha1.StorageVersion{sv("batch.jobs", entry("b", "batch/v1"))},
			want:   map[schema.GroupVersionResource]want{jobsV1: {known: true}},
		},
		{
			name:   "several live peers are listed in ID order",
			leases: []*coordinationv1.Lease{lease("a", "x:1", 0), lease("c", "z:1", 0), lease("b", "y:1", 0)},
			svs:    []*apiserverinternalv1alpha1.StorageVersion{sv("batch.jobs", entry("c", "batch/v1"), entry("b", "batch/v1"))},
			want:   map[schema.GroupVersionResource]want{jobsV1: {live: []string{"b", "c"}, known: true}},
		},
		{
			name:   "served version of another group and bad names are ignored",
			leases: []*coordinationv1.Lease{lease("a", "x:1", 0), lease("b", "y:1", 0)},
			svs: []*apiserverinternalv1alpha1.StorageVersion{
				sv("batch.jobs", entry("b", "apps/v1")),
				sv("nodots", entry("b", "v1")),
				sv("trailing.", entry("b", "v1")),
			},
			want: map[schema.GroupVersionResource]want{jobsV1: {known: false}, {Group: "apps", Version: "v1", Resource: "jobs"}: {known: false}},
		},
		{
			name:   "self without a lease yet is live to itself",
			leases: nil,
			svs:    []*apiserverinternalv1alpha1.StorageVersion{sv("batch.jobs", entry("a", "batch/v1"))},
			want:   map[schema.GroupVersionResource]want{jobsV1: {known: true}},
			peers:  map[string]Peer{"a": {Live: true}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := BuildSnapshot(SnapshotInputs{Self: "a", Now: t0, LiveWindow: 30 * time.Second, Leases: tt.leases, StorageVersions: tt.svs, MissingSince: tt.missing})
			for gvr, w := range tt.want {
				var ids []string
				for _, p := range s.LivePeers(gvr) {
					ids = append(ids, p.ID)
				}
				if !reflect.DeepEqual(ids, w.live) {
					t.Errorf("LivePeers(%s) = %v, want %v", gvr, ids, w.live)
				}
				if got := s.Known(gvr); got != w.known {
					t.Errorf("Known(%s) = %v, want %v", gvr, got, w.known)
				}
			}
			for id, w := range tt.peers {
				p, ok := s.Peer(id)
				if !ok {
					t.Fatalf("peer %s missing", id)
				}
				if p.Live != w.Live || p.Address != w.Address || !p.DepartedAt.Equal(w.DepartedAt) {
					t.Errorf("peer %s = %+v, want live=%v address=%q departedAt=%v", id, p, w.Live, w.Address, w.DepartedAt)
				}
			}
		})
	}
}

func TestNilSnapshotIsEmpty(t *testing.T) {
	var s *Snapshot
	if s.Known(jobsV1) || len(s.LivePeers(jobsV1)) != 0 || len(s.Peers()) != 0 || len(s.GVRs()) != 0 {
		t.Fatal("a nil snapshot must know nothing")
	}
}

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
		if got := StorageVersionName(tt.gr); got != tt.name {
			t.Errorf("StorageVersionName(%v) = %q, want %q", tt.gr, got, tt.name)
		}
		gr, ok := ParseStorageVersionName(tt.name)
		if !ok || gr != tt.gr {
			t.Errorf("ParseStorageVersionName(%q) = %v %v, want %v", tt.name, gr, ok, tt.gr)
		}
	}
	for _, bad := range []string{"", "pods", ".pods", "apps."} {
		if _, ok := ParseStorageVersionName(bad); ok {
			t.Errorf("ParseStorageVersionName(%q) accepted", bad)
		}
	}
}
