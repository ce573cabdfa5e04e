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

package registration

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apiserver/pkg/reconcilers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	testingclock "k8s.io/utils/clock/testing"

	"github.com/mvp-apiserver/kube-apiserver/pkg/controlplane/peerproxy/peers"
)

// TestKeepIdentityLease: upstream's lease controller deletes its lease
// through a client built on the wrapped loopback config; the server sees a
// merge patch recording the stop instead, and every other request as sent.
func TestKeepIdentityLease(t *testing.T) {
	type seen struct{ method, path, contentType, body string }
	var got []seen
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		got = append(got, seen{r.Method, r.URL.Path, r.Header.Get("Content-Type"), string(b)})
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(&coordinationv1.Lease{TypeMeta: metav1.TypeMeta{Kind: "Lease", APIVersion: "coordination.k8s.io/v1"}})
	}))
	defer srv.Close()
	clk := testingclock.NewFakeClock(t0)
	cfg := &rest.Config{Host: srv.URL}
	cfg.Wrap(KeepIdentityLease("apiserver-self", 45*time.Second, clk))
	client := kubernetes.NewForConfigOrDie(cfg)
	ctx := context.Background()
	leases := client.CoordinationV1().Leases("kube-system")

	if err := leases.Delete(ctx, "apiserver-self", metav1.DeleteOptions{}); err != nil {
		t.Fatalf("delete of this server's lease: %v", err)
	}
	if err := leases.Delete(ctx, "apiserver-other", metav1.DeleteOptions{}); err != nil {
		t.Fatalf("delete of another server's lease: %v", err)
	}
	if err := client.CoordinationV1().Leases("default").Delete(ctx, "apiserver-self", metav1.DeleteOptions{}); err != nil {
		t.Fatalf("delete in another namespace: %v", err)
	}
	if len(got) != 3 {
		t.Fatalf("server saw %d requests, want 3: %+v", len(got), got)
	}
	if got[0].method != http.MethodPatch || got[0].path != "/apis/coordination.k8s.io/v1/namespaces/kube-system/leases/apiserver-self" ||
		got[0].contentType != "application/merge-patch+json" {
		t.Errorf("own lease: got %+v, want a merge patch of it", got[0])
	}
	var patch struct {
		Metadata struct {
			Annotations map[string]string `json:"annotations"`
		} `json:"metadata"`
		Spec struct {
			LeaseDurationSeconds int `json:"leaseDurationSeconds"`
		} `json:"spec"`
	}
	if err := json.Unmarshal([]byte(got[0].body), &patch); err != nil {
		t.Fatalf("patch body %q: %v", got[0].body, err)
	}
	if at := peers.StoppedAt(patch.Metadata.Annotations); !at.Equal(t0) {
		t.Errorf("stopped at %v, want %v (patch %s)", at, t0, got[0].body)
	}
	if patch.Spec.LeaseDurationSeconds != 45 {
		t.Errorf("leaseDurationSeconds %d, want the retention window, 45", patch.Spec.LeaseDurationSeconds)
	}
	for _, g := range got[1:] {
		if g.method != http.MethodDelete || !strings.HasSuffix(g.path, "/leases/apiserver-other") && !strings.Contains(g.path, "/namespaces/default/") {
			t.Errorf("other lease: got %+v, want the DELETE as sent", g)
		}
	}
}

func TestHolderIdentity(t *testing.T) {
	served := map[string]peers.Entry{"batch.jobs": entry("a", "batch/v1"), "core.pods": entry("a", "v1")}
	same := map[string]peers.Entry{"core.pods": entry("a", "v1"), "batch.jobs": entry("a", "batch/v1")}
	fewer := map[string]peers.Entry{"core.pods": entry("a", "v1")}
	h := holderIdentity("apiserver-a", "v1.37.2", served, "boot1")
	if !strings.HasPrefix(h, "apiserver-a_") {
		t.Errorf("holder %q does not start with the server's ID", h)
	}
	if a, b := bootID(), bootID(); a == b {
		t.Errorf("two starts got the same boot ID %q", a)
	}
	tests := []struct {
		name    string
		version string
		local   map[string]peers.Entry
		boot    string
		same    bool
	}{
		{"the same process serving the same API in another order keeps it", "v1.37.2", same, "boot1", true},
		{"a restart changes it (vanilla peers fetch again)", "v1.37.2", same, "boot2", false},
		{"a resource less changes it", "v1.37.2", fewer, "boot1", false},
		{"another version changes it", "v1.37.3", served, "boot1", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := holderIdentity("apiserver-a", tc.version, tc.local, tc.boot); (got == h) != tc.same {
				t.Errorf("holder %q against %q: same=%v, want %v", got, h, got == h, tc.same)
			}
		})
	}
}

func TestExpiredLeases(t *testing.T) {
	snap := peers.BuildSnapshot(peers.SnapshotInputs{Self: "a", Now: t0, LiveWindow: 30 * time.Second, Leases: []*coordinationv1.Lease{
		lease("a", "x:1", time.Hour),                                    // self: never
		lease("b", "y:1", 10*time.Minute),                               // crashed, window passed
		stoppedLease(lease("c", "z:1", 11*time.Minute), 11*time.Minute), // stopped, window passed
		stoppedLease(lease("d", "w:1", time.Minute), time.Minute),       // stopped within the window
		lease("e", "v:1", time.Second),                                  // live
	}})
	got := expiredLeases(snap, t0, 10*time.Minute)
	if strings.Join(got, ",") != "b,c" {
		t.Errorf("expired leases %v, want [b c]", got)
	}
}

// fakeAddressRecords records the calls that reach upstream's reconciler.
type fakeAddressRecords struct {
	reconcilers.PeerEndpointLeaseReconciler
	calls []string
}

func (f *fakeAddressRecords) GetEndpoint(id string) (string, error) {
	f.calls = append(f.calls, "get "+id)
	return "127.0.0.1:6443", nil
}
func (f *fakeAddressRecords) RemoveLease(id string) error {
	f.calls = append(f.calls, "remove "+id)
	return nil
}
func (f *fakeAddressRecords) StopReconciling() { f.calls = append(f.calls, "stop") }

func TestKeepAddressRecord(t *testing.T) {
	f := &fakeAddressRecords{}
	r := KeepAddressRecord(f)
	r.StopReconciling()
	if err := r.RemoveLease("apiserver-a"); err != nil {
		t.Fatalf("RemoveLease: %v", err)
	}
	if addr, err := r.GetEndpoint("apiserver-a"); err != nil || addr != "127.0.0.1:6443" {
		t.Fatalf("GetEndpoint = %q, %v", addr, err)
	}
	if want := []string{"stop", "get apiserver-a"}; !slices.Equal(f.calls, want) {
		t.Errorf("calls reaching upstream's reconciler: %q, want %q (the record is never removed)", f.calls, want)
	}
}
