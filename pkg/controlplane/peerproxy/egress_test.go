package peerproxy

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

const testEgressProxy = "HTTPConnect proxy at unix socket /run/egress.sock"

// recordingDialer dials directly and records every address asked for: a
// stand-in for the egress selector's dialer that shows who used it.
type recordingDialer struct {
	mu    sync.Mutex
	addrs []string
}

func (d *recordingDialer) dial(ctx context.Context, network, addr string) (net.Conn, error) {
	d.mu.Lock()
	d.addrs = append(d.addrs, addr)
	d.mu.Unlock()
	var nd net.Dialer
	return nd.DialContext(ctx, network, addr)
}

func (d *recordingDialer) dialled() []string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return append([]string(nil), d.addrs...)
}

// Every connection to a peer, proxied request or discovery fetch, is made
// by the configured dialer.
func TestEgressDialerCarriesProxyingAndDiscovery(t *testing.T) {
	rec := &recordingDialer{}
	fx := newProxyFixture(t, func(c *ProxyConfig) { c.DialContext, c.EgressProxy = rec.dial, testEgressProxy })
	b := fx.peer(t, "b", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusOK) }))

	w := httptest.NewRecorder()
	fx.serve(w, httptest.NewRequest(http.MethodGet, "/apis/batch/v1/namespaces/default/jobs/x", nil), alice, b)
	if w.Code != http.StatusOK {
		t.Fatalf("proxied request: %d, want 200", w.Code)
	}
	if got := rec.dialled(); len(got) != 1 || got[0] != b.Address {
		t.Fatalf("after a proxied request the dialer was asked for %v, want [%s]", got, b.Address)
	}

	req, _ := http.NewRequest(http.MethodGet, "https://"+b.Address+"/apis", nil)
	resp, err := fx.t.forDiscovery().RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if got := rec.dialled(); len(got) != 2 || got[1] != b.Address {
		t.Fatalf("after a discovery fetch the dialer was asked for %v, want a second dial of %s (discovery has its own connection)", got, b.Address)
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
	fx := newProxyFixture(t, func(c *ProxyConfig) { c.DialContext, c.EgressProxy = broken, testEgressProxy })
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
	if f := classify(err); f.kind != errEgressProxy || !strings.Contains(f.cause, testEgressProxy) {
		t.Errorf("classified as %q (%q), want %q naming the proxy", f.kind, f.cause, errEgressProxy)
	}
	if !strings.Contains(err.Error(), testEgressProxy) || !strings.Contains(err.Error(), "connection refused") {
		t.Errorf("error %q should name the proxy and keep its cause", err)
	}
}

// A proxy that never answers CONNECT cannot hold a request: the dial is
// cut off, and a connection that arrives late is closed.
func TestEgressDialIsBounded(t *testing.T) {
	release := make(chan struct{})
	late := make(chan net.Conn, 1)
	hanging := func(ctx context.Context, network, addr string) (net.Conn, error) {
		<-release // like upstream's CONNECT read, deaf to ctx
		client, server := net.Pipe()
		late <- server
		return client, nil
	}
	dial := newEgressDialer(hanging, testEgressProxy, 50*time.Millisecond, maxPendingEgressDials).dial
	start := time.Now()
	_, err := dial(context.Background(), "tcp", "127.0.0.1:6443")
	if elapsed := time.Since(start); elapsed > 2*time.Second {
		t.Errorf("dial returned after %s, want about 50ms", elapsed)
	}
	var ee *egressError
	if !errors.As(err, &ee) || !errors.Is(err, context.DeadlineExceeded) || !classify(err).undelivered {
		t.Fatalf("got %v, want an unreachable egress error from the deadline", err)
	}
	if kind := classify(err).kind; kind != errEgressProxy {
		t.Errorf("classified as %q, want %q (the proxy failed, not the peer)", kind, errEgressProxy)
	}
	close(release)
	server := <-late
	server.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := server.Read(make([]byte, 1)); err == nil {
		t.Error("the late connection was left open")
	}
}

// A proxy that never answers holds at most maxPending dials per address,
// whatever the load: past that, dials fail at once and start nothing.
func TestEgressFrozenProxyHoldsBoundedDials(t *testing.T) {
	release := make(chan struct{})
	var started atomic.Int32
	frozen := func(ctx context.Context, network, addr string) (net.Conn, error) {
		started.Add(1)
		<-release
		return nil, errors.New("proxy gone")
	}
	const maxPending = 3
	d := newEgressDialer(frozen, testEgressProxy, 20*time.Millisecond, maxPending)
	before := runtime.NumGoroutine()
	for i := range 200 {
		_, err := d.dial(context.Background(), "tcp", "127.0.0.1:6443")
		var ee *egressError
		if !errors.As(err, &ee) {
			t.Fatalf("dial %d: %v, want an egress error", i, err)
		}
		if i >= maxPending && !strings.Contains(err.Error(), "3 earlier dials to it through the proxy are still unanswered") {
			t.Fatalf("dial %d: %v, want it refused at once", i, err)
		}
	}
	if n := started.Load(); n != maxPending {
		t.Fatalf("%d dials reached the proxy, want %d", n, maxPending)
	}
	// Another address has slots of its own.
	if _, err := d.dial(context.Background(), "tcp", "127.0.0.2:6443"); err == nil || started.Load() != maxPending+1 {
		t.Fatalf("another peer's dial: %v, %d started", err, started.Load())
	}
	if grew := runtime.NumGoroutine() - before; grew > 2*(maxPending+1)+2 {
		t.Errorf("%d goroutines more after 201 dials, want at most %d", grew, 2*(maxPending+1)+2)
	}
	close(release)
	// Once the proxy answers, the slots free up and dials start again.
	deadline := time.Now().Add(5 * time.Second)
	for {
		_, err := d.dial(context.Background(), "tcp", "127.0.0.1:6443")
		if strings.Contains(err.Error(), "proxy gone") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("slots never freed: %v", err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
