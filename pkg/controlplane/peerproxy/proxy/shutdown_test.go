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
	"bufio"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"k8s.io/apiserver/pkg/endpoints/request"
)

// shutdownSignal is the server's "not accepting new requests" signal, as
// WithWatchTerminationDuringShutdown hands it to each watch.
type shutdownSignal chan struct{}

func (s shutdownSignal) ShuttingDown() <-chan struct{} { return s }

// watchThrough serves fx's filter as a server whose watches carry sig (none
// when nil), and opens a watch of Jobs through it.
func watchThrough(t *testing.T, fx *routeFixture, sig request.ServerShutdownSignal) *http.Response {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx := request.WithRequestInfo(r.Context(), &request.RequestInfo{IsResourceRequest: true, APIGroup: "batch", APIVersion: "v1", Resource: "jobs", Verb: "watch"})
		if sig != nil {
			ctx = request.WithServerShutdownSignal(ctx, sig)
		}
		fx.h.ServeHTTP(w, r.WithContext(request.WithUser(ctx, alice)))
	}))
	t.Cleanup(srv.Close)
	resp, err := http.Get(srv.URL + "/apis/batch/v1/jobs?watch=1")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	return resp
}

// When the server begins to stop, a relayed watch ends as a local one
// does: the peer's request is cancelled and the client reads the end of a
// complete response, after every event it was sent. A watch on a server
// that does not end its watches (no signal) runs on.
func TestRelayedWatchEndsWhenTheServerBeginsToStop(t *testing.T) {
	fx := newRouteFixture(t, nil)
	peerLeft := make(chan struct{}, 2)
	b := fx.peer(t, "b", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte(`{"type":"ADDED"}` + "\n"))
		w.(http.Flusher).Flush()
		<-r.Context().Done() // a watch the peer would hold forever
		peerLeft <- struct{}{}
	}))
	fx.table.snap.Store(jobsSnapshot(b))
	sig := make(shutdownSignal)
	ended := bufio.NewReader(watchThrough(t, fx, sig).Body)
	unaffected := bufio.NewReader(watchThrough(t, fx, nil).Body)
	for _, r := range []*bufio.Reader{ended, unaffected} {
		if line, err := r.ReadString('\n'); err != nil || line != `{"type":"ADDED"}`+"\n" {
			t.Fatalf("first event %q, %v", line, err)
		}
	}

	close(sig)
	done := make(chan error, 1)
	go func() {
		rest, err := ended.ReadString('\n')
		if rest != "" {
			t.Errorf("after the stop the client read %q", rest)
		}
		done <- err
	}()
	select {
	case err := <-done:
		if err != io.EOF {
			t.Errorf("the watch ended with %v, want the end of a complete response (EOF)", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the relayed watch did not end when the server began to stop")
	}
	select {
	case <-peerLeft:
	case <-time.After(10 * time.Second):
		t.Fatal("the peer's request was not cancelled")
	}
	if healthy, lastErr, _ := fx.f.health.State("b"); !healthy || lastErr != "" {
		t.Errorf("the stop was blamed on the peer: healthy %v, last error %q", healthy, lastErr)
	}
	select {
	case <-peerLeft:
		t.Error("the watch of a server without the shutdown signal was ended too")
	default:
	}
}
