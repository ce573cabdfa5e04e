package peerproxy

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"k8s.io/apiserver/pkg/authentication/user"
	"k8s.io/apiserver/pkg/endpoints/request"
	"k8s.io/utils/clock"

	"github.com/mvp-apiserver/kube-apiserver/test/e2e/harness"
)

type proxyFixture struct {
	pki *harness.PKI
	t   *transports
	f   *failover
	rp  http.Handler
	// errs receives what the error handler was called with.
	errs chan error
}

// newProxyFixture builds the proxy; configure, if given, changes its
// configuration first (a dialer, say).
func newProxyFixture(t *testing.T, configure ...func(*ProxyConfig)) *proxyFixture {
	t.Helper()
	pki, err := harness.NewPKI(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	cfg := ProxyConfig{CAFile: pki.CAFile, ClientCertFile: pki.ProxyClientCert, ClientKeyFile: pki.ProxyClientKey, Headers: kubeadmHeaders}
	for _, c := range configure {
		c(&cfg)
	}
	tr, err := newTransports(cfg)
	if err != nil {
		t.Fatal(err)
	}
	h := newHealth(clock.RealClock{})
	h.start = func(int) int { return 0 } // peers in the order given
	fx := &proxyFixture{pki: pki, t: tr, f: &failover{t: tr, health: h}, errs: make(chan error, 10)}
	fx.rp = newReverseProxy(fx.f, cfg.Headers, func(w http.ResponseWriter, r *http.Request, err error) {
		fx.errs <- err
		w.WriteHeader(http.StatusServiceUnavailable)
	}, copyBuffers)
	return fx
}

// peer starts a TLS peer that requires the front-proxy client certificate.
func (fx *proxyFixture) peer(t *testing.T, id string, h http.Handler) *Peer {
	t.Helper()
	certFile, keyFile, err := fx.pki.IssueServing(id, net.ParseIP("127.0.0.1"))
	if err != nil {
		t.Fatal(err)
	}
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	fp, _ := os.ReadFile(fx.pki.FrontProxyCAFile)
	pool.AppendCertsFromPEM(fp)
	srv := httptest.NewUnstartedServer(h)
	srv.EnableHTTP2 = true
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{cert}, ClientAuth: tls.RequireAndVerifyClientCert, ClientCAs: pool}
	srv.StartTLS()
	t.Cleanup(srv.Close)
	return &Peer{ID: id, Address: srv.Listener.Addr().String(), Live: true}
}

// deadPeer is an address where nothing listens.
func deadPeer(t *testing.T, id string) *Peer {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return &Peer{ID: id, Address: addr, Live: true}
}

// serve runs req through the reverse proxy as u, routed to peers.
func (fx *proxyFixture) serve(w http.ResponseWriter, req *http.Request, u user.Info, peers ...*Peer) *attempt {
	a := &attempt{route: Route{Decision: Proxy, Peers: peers}}
	ctx := request.WithUser(req.Context(), u)
	ctx = context.WithValue(ctx, attemptKey{}, a)
	fx.rp.ServeHTTP(w, req.WithContext(ctx))
	return a
}

var alice = &user.DefaultInfo{Name: "alice", UID: "42", Groups: []string{"devs", "system:authenticated"}, Extra: map[string][]string{"scopes.example/a b": {"x"}}}

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
	if seen.Get(HeaderRerouted) != "true" || seen.Get(HeaderPeerProxied) != "true" {
		t.Errorf("reroute markers missing: %v", seen)
	}
}

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
	healthy, lastErr, _ := fx.f.health.state("dead")
	if healthy || !strings.Contains(lastErr, "refused") {
		t.Errorf("dead peer: healthy=%v lastErr=%q", healthy, lastErr)
	}
	// In backoff, the dead peer is tried last.
	if order := fx.f.health.order([]*Peer{dead, live}); order[0].ID != "live" {
		t.Errorf("order = %s first", order[0].ID)
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

func TestHealthSpreadsLoad(t *testing.T) {
	h := newHealth(clock.RealClock{})
	peers := []*Peer{{ID: "a"}, {ID: "b"}, {ID: "c"}}
	first := map[string]int{}
	for i := 0; i < 300; i++ {
		first[h.order(peers)[0].ID]++
	}
	for _, p := range peers {
		if first[p.ID] < 50 {
			t.Errorf("%s went first %d times of 300: %v", p.ID, first[p.ID], first)
		}
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
	if kind := classify(err).kind; kind != errUntrustedCert {
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
	slow := pingAfter + pingTimeout + time.Second
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
		if healthy, lastErr, _ := fx.f.health.state("b"); !healthy || lastErr != "" {
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
	var unsendable *unsendableError
	if !errors.As(err, &unsendable) || !strings.Contains(err.Error(), "X-Remote-Extra-Note") {
		t.Fatalf("error %v", err)
	}
	if healthy, lastErr, _ := fx.f.health.state("b"); !healthy || lastErr != "" {
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
	if kind := classify(err).kind; kind != errClientCertRefused || rec.Code != http.StatusServiceUnavailable {
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
