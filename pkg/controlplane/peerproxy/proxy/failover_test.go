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
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"k8s.io/apiserver/pkg/authentication/user"
	testingclock "k8s.io/utils/clock/testing"

	"github.com/mvp-apiserver/kube-apiserver/pkg/controlplane/peerproxy/peerclient"

	"github.com/mvp-apiserver/kube-apiserver/pkg/controlplane/peerproxy/peers"
)

const testEgressProxy = "HTTPConnect proxy at unix socket /run/egress.sock"

func TestProxyFailsOverFromUnreachablePeer(t *testing.T) {
	fx := newProxyFixture(t)
	dead := deadPeer(t, "dead")
	live := fx.peer(t, "live", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "from live") }))
	for i := 0; i < 5; i++ {
		rec := httptest.NewRecorder()
		a := fx.serve(rec, httptest.NewRequest(http.MethodPost, "https://a/apis/batch/v1/namespaces/x/jobs", strings.NewReader(`{"kind":"Job"}`)), alice, dead, live)
		if rec.Code != 200 || rec.Body.String() != "from live" || a.served != "live" {
			t.Fatalf("request %d: %d %q served by %q (tried %v)", i, rec.Code, rec.Body.String(), a.served, a.tried)
		}
	}
	healthy, lastErr, _ := fx.f.health.State("dead")
	if healthy || !strings.Contains(lastErr, "refused") {
		t.Errorf("dead peer: healthy=%v lastErr=%q", healthy, lastErr)
	}
	// In backoff, the dead peer is tried last.
	if order, healthy := fx.f.health.order([]*peers.Peer{dead, live}); order[0].ID != "live" || healthy != 1 {
		t.Errorf("order = %s first, %d healthy", order[0].ID, healthy)
	}
}

func TestProxyNeverResendsABodyThatReachedAPeer(t *testing.T) {
	fx := newProxyFixture(t)
	var second atomic.Int32
	// The first peer reads the whole body, then drops the connection.
	first := fx.peer(t, "first", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		panic(http.ErrAbortHandler)
	}))
	other := fx.peer(t, "other", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { second.Add(1) }))
	rec := httptest.NewRecorder()
	a := fx.serve(rec, httptest.NewRequest(http.MethodPost, "https://a/apis/batch/v1/namespaces/x/jobs", strings.NewReader(strings.Repeat("x", 1<<16))), alice, first, other)
	if a.served != "" || len(a.tried) != 1 || second.Load() != 0 {
		t.Fatalf("a write was resent: tried %v, served by %q, second peer got %d", a.tried, a.served, second.Load())
	}
	if rec.Code != http.StatusServiceUnavailable || len(fx.errs) != 1 {
		t.Fatalf("answer %d, %d errors", rec.Code, len(fx.errs))
	}

	// A read that fails the same way is retried on the next peer.
	second.Store(0)
	get := fx.peer(t, "get-first", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { panic(http.ErrAbortHandler) }))
	rec = httptest.NewRecorder()
	a = fx.serve(rec, httptest.NewRequest(http.MethodGet, "https://a/apis/batch/v1/jobs", nil), alice, get, other)
	if a.served != "other" || second.Load() != 1 {
		t.Fatalf("read not retried: tried %v, served by %q", a.tried, a.served)
	}
}

// A caller that gives up, or whose deadline passes, is not the peer's
// fault: the peer stays healthy and keeps no error.
func TestProxyCallerGivingUpIsNotThePeersFault(t *testing.T) {
	fx := newProxyFixture(t)
	release := make(chan struct{})
	defer close(release)
	p := fx.peer(t, "b", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	for _, give := range []struct {
		name string
		ctx  func() (context.Context, context.CancelFunc)
	}{
		{"canceled", func() (context.Context, context.CancelFunc) {
			ctx, cancel := context.WithCancel(context.Background())
			time.AfterFunc(100*time.Millisecond, cancel)
			return ctx, cancel
		}},
		{"deadline", func() (context.Context, context.CancelFunc) {
			return context.WithTimeout(context.Background(), 100*time.Millisecond)
		}},
	} {
		ctx, cancel := give.ctx()
		req := httptest.NewRequest(http.MethodGet, "https://a/apis/batch/v1/jobs", nil).WithContext(ctx)
		fx.serve(httptest.NewRecorder(), req, alice, p)
		cancel()
		if healthy, lastErr, _ := fx.f.health.State("b"); !healthy || lastErr != "" {
			t.Errorf("%s: peer healthy=%v lastErr=%q", give.name, healthy, lastErr)
		}
	}
}

// A request no peer could receive (an extra value with a line break) is
// refused before any peer is tried, and no peer is blamed.
func TestProxyRefusesAnUnsendableRequestWithoutBlamingPeers(t *testing.T) {
	fx := newProxyFixture(t)
	var reached atomic.Int32
	p := fx.peer(t, "b", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { reached.Add(1) }))
	bad := &user.DefaultInfo{Name: "x", Extra: map[string][]string{"note": {"a\r\nX-Remote-Group: system:masters"}}}
	rec := httptest.NewRecorder()
	a := fx.serve(rec, httptest.NewRequest(http.MethodGet, "https://a/apis/batch/v1/jobs", nil), bad, p)
	if rec.Code != http.StatusServiceUnavailable || reached.Load() != 0 || len(a.tried) != 0 {
		t.Fatalf("answer %d, peer reached %d times, tried %v", rec.Code, reached.Load(), a.tried)
	}
	err := <-fx.errs
	var unsendable *peerclient.UnsendableError
	if !errors.As(err, &unsendable) || !strings.Contains(err.Error(), "X-Remote-Extra-Note") {
		t.Fatalf("error %v", err)
	}
	if healthy, lastErr, _ := fx.f.health.State("b"); !healthy || lastErr != "" {
		t.Errorf("peer healthy=%v lastErr=%q", healthy, lastErr)
	}
}

// A peer that answers as if for system:anonymous did not accept this
// server's client certificate: the next peer is tried, and the error names
// the certificate. A real user's own 403 is relayed as it is.
func TestProxyPeerIgnoringTheIdentityIsNamed(t *testing.T) {
	fx := newProxyFixture(t)
	anonymous := fx.peer(t, "rotated", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusForbidden)
		io.WriteString(w, `{"kind":"Status","message":"jobs.batch is forbidden: User \"system:anonymous\" cannot list resource \"jobs\""}`)
	}))
	good := fx.peer(t, "good", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") }))
	rec := httptest.NewRecorder()
	a := fx.serve(rec, httptest.NewRequest(http.MethodPost, "https://a/apis/batch/v1/namespaces/x/jobs", nil), alice, anonymous, good)
	if rec.Code != 200 || a.served != "good" {
		t.Fatalf("answer %d served by %q (tried %v)", rec.Code, a.served, a.tried)
	}
	unauthorized := fx.peer(t, "401", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusUnauthorized) }))
	rec = httptest.NewRecorder()
	fx.serve(rec, httptest.NewRequest(http.MethodGet, "https://a/apis/batch/v1/jobs", nil), alice, unauthorized)
	err := <-fx.errs
	if kind := peerclient.Classify(err).Kind; kind != peerclient.KindClientCertRefused || rec.Code != http.StatusServiceUnavailable {
		t.Fatalf("answer %d, error %v classified %s", rec.Code, err, kind)
	}
	if !strings.Contains(err.Error(), `subject "CN=front-proxy-client"`) || !strings.Contains(err.Error(), "--requestheader-client-ca-file") {
		t.Errorf("error does not name the certificate and the flag: %v", err)
	}

	denied := `{"kind":"Status","message":"jobs.batch is forbidden: User \"alice\" cannot list resource \"jobs\""}`
	own := fx.peer(t, "own", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusForbidden)
		io.WriteString(w, denied)
	}))
	rec = httptest.NewRecorder()
	fx.serve(rec, httptest.NewRequest(http.MethodGet, "https://a/apis/batch/v1/jobs", nil), alice, own)
	if rec.Code != http.StatusForbidden || rec.Body.String() != denied {
		t.Fatalf("a real 403 was not relayed as it is: %d %q", rec.Code, rec.Body.String())
	}
}

// A failing egress proxy is a peer failure: the request fails with an
// error that names the proxy, and nothing is dialled around it.
func TestEgressFailureNeverDialsDirectly(t *testing.T) {
	var dials atomic.Int32
	broken := func(ctx context.Context, network, addr string) (net.Conn, error) {
		dials.Add(1)
		return nil, errors.New("dial unix /run/egress.sock: connect: connection refused")
	}
	fx := newProxyFixture(t, func(c *peerclient.Config) { c.DialContext, c.EgressProxy = broken, testEgressProxy })
	var reached atomic.Int32
	handler := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { reached.Add(1) })
	b, c := fx.peer(t, "b", handler), fx.peer(t, "c", handler)

	w := httptest.NewRecorder()
	body := strings.NewReader(`{"kind":"Job"}`)
	a := fx.serve(w, httptest.NewRequest(http.MethodPost, "/apis/batch/v1/namespaces/default/jobs", body), alice, b, c)
	if w.Code != http.StatusServiceUnavailable {
		t.Fatalf("got %d, want 503", w.Code)
	}
	if n := reached.Load(); n != 0 {
		t.Errorf("peers received %d requests: something dialled around the egress proxy", n)
	}
	// Nothing reached a peer, so even a write moves on to the next one.
	if len(a.tried) != 2 || dials.Load() != 2 {
		t.Errorf("tried %v with %d dials, want both peers, one dial each", a.tried, dials.Load())
	}
	err := <-fx.errs
	if f := peerclient.Classify(err); f.Kind != peerclient.KindEgressProxy || !strings.Contains(f.Cause, testEgressProxy) {
		t.Errorf("classified as %q (%q), want %q naming the proxy", f.Kind, f.Cause, peerclient.KindEgressProxy)
	}
	if !strings.Contains(err.Error(), testEgressProxy) || !strings.Contains(err.Error(), "connection refused") {
		t.Errorf("error %q should name the proxy and keep its cause", err)
	}
}

// However many peers are cut off, a request stops starting tries once
// failoverBudget is spent, and tries one peer in backoff at most; a peer
// in backoff that is back is still found.
func TestFailoverIsBounded(t *testing.T) {
	clk := testingclock.NewFakeClock(time.Unix(1e9, 0))
	cut := map[string]bool{}
	// A try at a cut peer fails after 2 s of the fake clock.
	dial := func(ctx context.Context, network, addr string) (net.Conn, error) {
		if cut[addr] {
			clk.Step(2 * time.Second)
			return nil, &net.OpError{Op: "dial", Net: network, Err: errors.New("i/o timeout")}
		}
		return (&net.Dialer{}).DialContext(ctx, network, addr)
	}
	fx := newProxyFixture(t, func(c *peerclient.Config) { c.DialContext = dial })
	fx.f.health.clock = clk
	var cutPeers []*peers.Peer
	for i := range 5 {
		p := &peers.Peer{ID: fmt.Sprintf("cut-%d", i), Address: fmt.Sprintf("192.0.2.%d:6443", i+1), Live: true}
		cut[p.Address] = true
		cutPeers = append(cutPeers, p)
	}
	get := func(candidates ...*peers.Peer) *attempt {
		rec := httptest.NewRecorder()
		a := fx.serve(rec, httptest.NewRequest(http.MethodGet, "https://a/apis/batch/v1/jobs", nil), alice, candidates...)
		if a.served == "" {
			<-fx.errs
		}
		return a
	}

	// Every peer healthy: tries start at 0 s, 2 s and 4 s; not at 6 s.
	a := get(cutPeers...)
	if len(a.tried) != 3 || a.served != "" {
		t.Fatalf("tried %v, served by %q: want three tries within the budget", a.tried, a.served)
	}
	if last := a.reasons[len(a.reasons)-1]; last != "2 more not tried: 5s of failover spent" {
		t.Errorf("last reason %q", last)
	}

	// Every peer in backoff: one try.
	for _, p := range cutPeers {
		fx.f.health.failed(p.ID, errors.New("cut"))
	}
	a = get(cutPeers...)
	if len(a.tried) != 1 || a.reasons[1] != "4 more in backoff not tried" {
		t.Fatalf("tried %v (%q): want one peer in backoff tried", a.tried, a.reasons)
	}

	// Two healthy peers cut, then a peer in backoff that is back: served.
	live := fx.peer(t, "back", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") }))
	fx.f.health.failed(live.ID, errors.New("was cut"))
	fresh := []*peers.Peer{{ID: "cut-x", Address: "192.0.2.100:6443", Live: true}, {ID: "cut-y", Address: "192.0.2.101:6443", Live: true}}
	for _, p := range fresh {
		cut[p.Address] = true
	}
	a = get(fresh[0], fresh[1], live, cutPeers[0])
	if a.served != "back" || len(a.tried) != 3 {
		t.Fatalf("tried %v, served by %q: want the peer in backoff that is back", a.tried, a.served)
	}
}
