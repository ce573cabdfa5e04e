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
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/utils/clock"

	"github.com/mvp-apiserver/kube-apiserver/pkg/controlplane/peerproxy/peers"
)

// A loopback call that hangs is cut off, so it never holds a worker.
func TestRegistrationCallsToAHungServerEnd(t *testing.T) {
	release := make(chan struct{})
	hung := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { <-release }))
	defer hung.Close()
	defer close(release)
	client, err := kubernetes.NewForConfig(&rest.Config{Host: hung.URL, Timeout: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		done <- writeEntries(context.Background(), client, "batch.jobs", true, clock.RealClock{}, func(e []peers.Entry) []peers.Entry { return e })
	}()
	select {
	case err := <-done:
		if err == nil {
			t.Fatal("a call to a hung server succeeded")
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the call to a hung server still holds the worker after 10s")
	}
}
