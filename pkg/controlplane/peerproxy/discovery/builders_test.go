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
	"encoding/json"
	"net/http/httptest"
	"sync/atomic"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/runtime/serializer"

	"github.com/mvp-apiserver/kube-apiserver/pkg/controlplane/peerproxy/peers"
	"github.com/mvp-apiserver/kube-apiserver/pkg/controlplane/peerproxy/peers/peerstest"
)

// The peer table's objects, built by peerstest.
var (
	t0           = peerstest.T0
	lease        = peerstest.Lease
	stoppedLease = peerstest.StoppedLease
	sv           = peerstest.StorageVersion
	entry        = peerstest.Entry
	jobsV1       = peerstest.JobsV1
	deployV1     = peerstest.DeployV1
	podsV1       = peerstest.PodsV1
	flowV1b3     = peerstest.FlowV1b3
)

// fakeTable is a peer table whose snapshot the test sets.
type fakeTable struct {
	snap       atomic.Pointer[peers.Snapshot]
	discovered atomic.Pointer[map[string][]schema.GroupVersionResource]
}

func (f *fakeTable) Snapshot() *peers.Snapshot                                { return f.snap.Load() }
func (f *fakeTable) Subscribe(func(*peers.Snapshot))                          {}
func (f *fakeTable) SetDiscovered(m map[string][]schema.GroupVersionResource) { f.discovered.Store(&m) }

// testCodecs write metav1 objects (Status, APIGroupList, APIGroup) in
// JSON, YAML and protobuf, as the server's own serializer does.
func testCodecs() runtime.NegotiatedSerializer {
	s := runtime.NewScheme()
	metav1.AddToGroupVersion(s, schema.GroupVersion{Version: "v1"})
	return serializer.NewCodecFactory(s)
}

// readStatus decodes a JSON Status answer.
func readStatus(t *testing.T, rec *httptest.ResponseRecorder) metav1.Status {
	t.Helper()
	var st metav1.Status
	if err := json.Unmarshal(rec.Body.Bytes(), &st); err != nil {
		t.Fatalf("answer is not a JSON Status (%s): %v: %q", rec.Header().Get("Content-Type"), err, rec.Body.String())
	}
	return st
}
