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
	"io"
	"net/http"
	"net/http/httptest"
	"reflect"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	appsv1beta2 "k8s.io/api/apps/v1beta2"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	endpointsdiscovery "k8s.io/apiserver/pkg/endpoints/discovery"
	"k8s.io/client-go/rest"

	"github.com/mvp-apiserver/kube-apiserver/pkg/controlplane/peerproxy/peerclient"
	"github.com/mvp-apiserver/kube-apiserver/pkg/controlplane/peerproxy/peers"
)

func testScheme() *runtime.Scheme {
	s := runtime.NewScheme()
	for _, add := range []func(*runtime.Scheme) error{corev1.AddToScheme, appsv1.AddToScheme, appsv1beta2.AddToScheme, batchv1.AddToScheme, eventsv1.AddToScheme} {
		utilruntime.Must(add(s))
	}
	utilruntime.Must(s.SetVersionPriority(appsv1.SchemeGroupVersion, appsv1beta2.SchemeGroupVersion))
	return s
}

func res(name, kind string, storedAs schema.GroupVersion) metav1.APIResource {
	r := metav1.APIResource{Name: name, Kind: kind}
	if !storedAs.Empty() {
		r.StorageVersionHash = endpointsdiscovery.StorageVersionHash(storedAs.Group, storedAs.Version, kind)
	}
	return r
}

func TestLocalEntries(t *testing.T) {
	schemes := []*runtime.Scheme{testScheme()}
	apps1 := schema.GroupVersion{Group: "apps", Version: "v1"}
	core1 := schema.GroupVersion{Version: "v1"}
	lists := []*metav1.APIResourceList{
		{GroupVersion: "v1", APIResources: []metav1.APIResource{
			res("pods", "Pod", core1),
			res("pods/status", "Pod", core1), // subresource: not its own entry
			res("bindings", "Binding", schema.GroupVersion{}),
			res("events", "Event", core1),
		}},
		{GroupVersion: "apps/v1", APIResources: []metav1.APIResource{res("deployments", "Deployment", apps1)}},
		{GroupVersion: "apps/v1beta2", APIResources: []metav1.APIResource{res("deployments", "Deployment", apps1)}},
		// events.k8s.io events are stored as core v1 Events.
		{GroupVersion: "events.k8s.io/v1", APIResources: []metav1.APIResource{res("events", "Event", core1)}},
		// A CRD's group: not in the scheme, not built in.
		{GroupVersion: "example.com/v1", APIResources: []metav1.APIResource{res("widgets", "Widget", schema.GroupVersion{Group: "example.com", Version: "v1"})}},
	}
	got, err := LocalEntries("me", lists, schemes)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]peers.Entry{
		"core.pods":        {APIServerID: "me", EncodingVersion: "v1", DecodableVersions: []string{"v1"}, ServedVersions: []string{"v1"}},
		"core.events":      {APIServerID: "me", EncodingVersion: "v1", DecodableVersions: []string{"v1"}, ServedVersions: []string{"v1"}},
		"apps.deployments": {APIServerID: "me", EncodingVersion: "apps/v1", DecodableVersions: []string{"apps/v1", "apps/v1beta2"}, ServedVersions: []string{"apps/v1", "apps/v1beta2"}},
		"events.k8s.io.events": {APIServerID: "me", EncodingVersion: "v1",
			DecodableVersions: []string{"events.k8s.io/v1", "v1"}, ServedVersions: []string{"events.k8s.io/v1"}},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("LocalEntries:\n got %+v\nwant %+v", got, want)
	}
	for name, e := range got {
		for _, s := range e.ServedVersions {
			if !slices.Contains(e.DecodableVersions, s) {
				t.Errorf("%s: served %s not decodable (the API rejects that)", name, s)
			}
		}
		if !slices.Contains(e.DecodableVersions, e.EncodingVersion) {
			t.Errorf("%s: encoding version not decodable", name)
		}
	}
}

func TestLocalEntriesUnknownHash(t *testing.T) {
	lists := []*metav1.APIResourceList{{GroupVersion: "apps/v1", APIResources: []metav1.APIResource{
		{Name: "deployments", Kind: "Deployment", StorageVersionHash: "not-a-known-hash"}}}}
	_, err := LocalEntries("me", lists, []*runtime.Scheme{testScheme()})
	if err == nil || !strings.Contains(err.Error(), "apps") || !strings.Contains(err.Error(), "Deployment") {
		t.Fatalf("err = %v, want one naming the resource", err)
	}
}

// While a server installs its paths, a group/version it does not serve
// answers 503 with Retry-After: 5. The local read must fail at once (to be
// retried by its caller), not sleep 5 s inside client-go.
func TestLocalDiscoveryDoesNotWaitOutRetryAfter(t *testing.T) {
	var rerouted atomic.Bool
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rerouted.Store(r.Header.Get(peerclient.HeaderRerouted) == "true")
		w.Header().Set("Retry-After", "5")
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusServiceUnavailable)
		io.WriteString(w, `{"kind":"Status","apiVersion":"v1","status":"Failure","reason":"ServiceUnavailable","code":503}`)
	}))
	defer srv.Close()
	dc, err := LocalDiscoveryClient(&rest.Config{Host: srv.URL})
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	_, err = LocalResourceLists(dc, []*runtime.Scheme{testScheme()})
	if took := time.Since(start); err == nil || took > 2*time.Second {
		t.Fatalf("read took %s with error %v; want an error at once", took, err)
	}
	if !rerouted.Load() {
		t.Error("the read was not marked as rerouted: a peer could have answered it")
	}
}
