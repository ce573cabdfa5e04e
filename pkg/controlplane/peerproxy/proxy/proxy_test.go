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
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"k8s.io/apiserver/pkg/authentication/user"
	"k8s.io/apiserver/pkg/endpoints/request"
	"k8s.io/utils/clock"

	"github.com/mvp-apiserver/kube-apiserver/pkg/controlplane/peerproxy/peerclient"
	"github.com/mvp-apiserver/kube-apiserver/pkg/controlplane/peerproxy/peerclient/peerclienttest"
	"github.com/mvp-apiserver/kube-apiserver/pkg/controlplane/peerproxy/peers"
	"github.com/mvp-apiserver/kube-apiserver/test/e2e/harness"
)

type proxyFixture struct {
	pki *harness.PKI
	t   *peerclient.Transports
	f   *failover
	rp  http.Handler
	// errs receives what the error handler was called with.
	errs chan error
}

// newProxyFixture builds the proxy; configure, if given, changes its
// configuration first (a dialer, say).
func newProxyFixture(t *testing.T, configure ...func(*peerclient.Config)) *proxyFixture {
	t.Helper()
	pki := peerclienttest.NewPKI(t)
	cfg := peerclienttest.Config(pki)
	for _, c := range configure {
		c(&cfg)
	}
	tr, err := peerclient.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	h := NewHealth(clock.RealClock{})
	h.start = func(int) int { return 0 } // peers in the order given
	fx := &proxyFixture{pki: pki, t: tr, f: &failover{t: tr, health: h}, errs: make(chan error, 10)}
	fx.rp = newReverseProxy(fx.f, cfg.Headers, func(w http.ResponseWriter, r *http.Request, err error) {
		fx.errs <- err
		w.WriteHeader(http.StatusServiceUnavailable)
	}, copyBuffers)
	return fx
}

// peer starts a TLS peer that requires the front-proxy client certificate.
func (fx *proxyFixture) peer(t *testing.T, id string, h http.Handler) *peers.Peer {
	t.Helper()
	return &peers.Peer{ID: id, Address: peerclienttest.StartPeer(t, fx.pki, id, h), Live: true}
}

// deadPeer is an address where nothing listens.
func deadPeer(t *testing.T, id string) *peers.Peer {
	return &peers.Peer{ID: id, Address: peerclienttest.DeadAddress(t), Live: true}
}

// serve runs req through the reverse proxy as u, routed to candidates.
func (fx *proxyFixture) serve(w http.ResponseWriter, req *http.Request, u user.Info, candidates ...*peers.Peer) *attempt {
	a := &attempt{peers: candidates}
	ctx := request.WithUser(req.Context(), u)
	ctx = context.WithValue(ctx, attemptKey{}, a)
	fx.rp.ServeHTTP(w, req.WithContext(ctx))
	return a
}

var alice = peerclienttest.Alice

func TestProxyForwardsIdentityNotCredentials(t *testing.T) {
	fx := newProxyFixture(t)
	var seen http.Header
	p := fx.peer(t, "b", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seen = r.Header.Clone()
		io.WriteString(w, "ok")
	}))
	req := httptest.NewRequest(http.MethodGet, "https://a/apis/batch/v1/jobs", nil)
	req.Header.Set("Authorization", "Bearer secret")
	req.Header.Set("Cookie", "s=1")
	req.Header.Set("Impersonate-User", "root")
	req.Header.Set("X-Remote-User", "root")
	req.Header.Add("X-Remote-Group", "system:masters")
	req.Header.Set("X-Remote-Extra-Evil", "1")
	rec := httptest.NewRecorder()
	fx.serve(rec, req, alice, p)

	if rec.Code != 200 || rec.Body.String() != "ok" {
		t.Fatalf("answer %d %q", rec.Code, rec.Body.String())
	}
	for _, h := range []string{"Authorization", "Cookie", "Impersonate-User", "X-Remote-Extra-Evil"} {
		if v := seen.Values(h); len(v) != 0 {
			t.Errorf("%s reached the peer: %v", h, v)
		}
	}
	if got := seen.Values("X-Remote-User"); len(got) != 1 || got[0] != "alice" {
		t.Errorf("X-Remote-User = %v", got)
	}
	if got := seen.Values("X-Remote-Group"); strings.Join(got, ",") != "devs,system:authenticated" {
		t.Errorf("X-Remote-Group = %v", got)
	}
	if got := seen.Get("X-Remote-Uid"); got != "42" {
		t.Errorf("X-Remote-Uid = %q", got)
	}
	if got := seen.Get("X-Remote-Extra-Scopes.example%2Fa%20b"); got != "x" {
		t.Errorf("extra not escaped and forwarded: %v", seen)
	}
	if seen.Get(peerclient.HeaderRerouted) != "true" || seen.Get(peerclient.HeaderPeerProxied) != "true" {
		t.Errorf("reroute markers missing: %v", seen)
	}
}

func TestProxyStreamsWatchEventsAsTheyArrive(t *testing.T) {
	fx := newProxyFixture(t)
	release := make(chan struct{})
	p := fx.peer(t, "b", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, "{\"type\":\"ADDED\"}\n")
		w.(http.Flusher).Flush()
		<-release // the stream stays open: the event must arrive anyway
		io.WriteString(w, "{\"type\":\"DELETED\"}\n")
	}))
	front := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { fx.serve(w, r, alice, p) }))
	defer front.Close()
	defer close(release)

	resp, err := http.Get(front.URL + "/apis/batch/v1/jobs?watch=true")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	lines := make(chan string, 2)
	go func() {
		sc := bufio.NewScanner(resp.Body)
		for sc.Scan() {
			lines <- sc.Text()
		}
	}()
	select {
	case l := <-lines:
		if l != `{"type":"ADDED"}` {
			t.Fatalf("first event %q", l)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the first watch event was held back by the proxy")
	}
}

func TestProxyUntrustedPeerCertificate(t *testing.T) {
	fx := newProxyFixture(t)
	other, err := harness.NewPKI(t.TempDir()) // a peer signed by another CA
	if err != nil {
		t.Fatal(err)
	}
	stranger := &proxyFixture{pki: other}
	var reached atomic.Int32
	p := stranger.peer(t, "stranger", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { reached.Add(1) }))
	rec := httptest.NewRecorder()
	fx.serve(rec, httptest.NewRequest(http.MethodGet, "https://a/apis/batch/v1/jobs", nil), alice, p)
	if rec.Code != http.StatusServiceUnavailable || reached.Load() != 0 {
		t.Fatalf("answer %d, peer reached %d times", rec.Code, reached.Load())
	}
	err = <-fx.errs
	if kind := peerclient.Classify(err).Kind; kind != peerclient.KindUntrustedCert {
		t.Fatalf("classified %v as %s", err, kind)
	}
}

func TestProxyUpgradesTheConnection(t *testing.T) {
	fx := newProxyFixture(t)
	// The peer switches protocols and echoes what it is sent, like exec.
	p := fx.peer(t, "b", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.ProtoMajor != 1 || r.Header.Get("Upgrade") != "echo" {
			http.Error(w, "want an HTTP/1.1 upgrade", http.StatusBadRequest)
			return
		}
		conn, rw, err := http.NewResponseController(w).Hijack()
		if err != nil {
			return
		}
		defer conn.Close()
		rw.WriteString("HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\n")
		rw.Flush()
		line, _ := rw.ReadString('\n')
		rw.WriteString("echo: " + line)
		rw.Flush()
	}))
	front := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { fx.serve(w, r, alice, p) }))
	defer front.Close()

	conn, err := net.Dial("tcp", front.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	io.WriteString(conn, "POST /api/v1/namespaces/x/pods/p/exec HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\n")
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("status %d", resp.StatusCode)
	}
	io.WriteString(conn, "hello\n")
	got, err := br.ReadString('\n')
	if err != nil || got != "echo: hello\n" {
		t.Fatalf("through the upgraded connection: %q %v", got, err)
	}
}

func TestProxyNeverCutsShortASlowLivePeer(t *testing.T) {
	fx := newProxyFixture(t)
	// Slower than a ping interval plus its timeout: the connection stays
	// healthy because the peer answers pings while its handler works.
	slow := peerclient.PingAfter + peerclient.PingTimeout + time.Second
	p := fx.peer(t, "b", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		time.Sleep(slow)
		io.WriteString(w, "late but fine")
	}))
	rec := httptest.NewRecorder()
	fx.serve(rec, httptest.NewRequest(http.MethodGet, "https://a/apis/batch/v1/jobs", nil), alice, p)
	if rec.Code != 200 || rec.Body.String() != "late but fine" {
		t.Fatalf("a slow peer was cut short: %d %q", rec.Code, rec.Body.String())
	}
}
