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

package peerclient

import (
	"context"
	"crypto/tls"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"time"

	"golang.org/x/net/http2"
	"k8s.io/klog/v2"
)

// peerServerName is the name peers' serving certificates are verified
// against: every kube-apiserver certificate carries it.
const peerServerName = "kubernetes.default.svc"

// Timeouts that bound how long a dead or frozen peer can hold a request,
// without ever cutting short a slow but live one (no response timeout).
// A relayed watch on a peer that died, froze or was cut off ends at most
// PingAfter+PingTimeout after the last frame from it, so its client learns
// within 5 s whether or not it pings this server itself.
const (
	dialTimeout = 3 * time.Second
	tlsTimeout  = 3 * time.Second
	// HTTP/2 pings after this much silence on a connection...
	PingAfter = 2 * time.Second
	// ...and close it if the ping is not answered in time.
	PingTimeout = 2 * time.Second
)

// Config is how this server reaches its peers.
type Config struct {
	// CAFile is --peer-ca-file: the bundle that verifies peers' serving
	// certificates (PEM), reloaded when it changes.
	CAFile string
	// ClientCertFile/ClientKeyFile: the front-proxy client certificate,
	// reloaded when it changes.
	ClientCertFile, ClientKeyFile string
	// Headers name the front-proxy headers a caller's identity travels in.
	Headers FrontProxyHeaders
	// DialContext dials peers: the egress selector's controlplane dialer,
	// or nil to dial directly. Proxied requests and discovery fetches
	// both go through it.
	DialContext func(ctx context.Context, network, addr string) (net.Conn, error)
	// EgressProxy names the proxy DialContext goes through, for errors.
	EgressProxy string
}

// Transports are the connections to peers: one HTTP/2 transport for
// ordinary requests, one HTTP/1.1 transport for protocol upgrades (exec,
// attach, port-forward), and one HTTP/2 transport of its own for discovery
// fetches, so that a large proxied response never holds up a fetch on a
// shared connection. All three are built anew when a certificate is
// reloaded: no request after a reload goes out on an older connection.
type Transports struct {
	creds      *credentials
	dial       dialFunc
	userHeader string
	current    atomic.Pointer[roundTrippers]
}

// roundTrippers are one generation of the transports, and each of them
// behind the identity check (what requests go out on).
type roundTrippers struct {
	h2, h1, discovery *http.Transport
	checked           struct{ h2, h1, discovery http.RoundTripper }
}

// New builds the transports and reads the certificates once.
func New(cfg Config) (*Transports, error) {
	t := &Transports{dial: (&net.Dialer{Timeout: dialTimeout, KeepAlive: 30 * time.Second}).DialContext, userHeader: cfg.Headers.UserHeader()}
	if cfg.DialContext != nil {
		t.dial = newEgressDialer(cfg.DialContext, cfg.EgressProxy, egressDialTimeout, maxPendingEgressDials).dial
	}
	creds, err := newCredentials(cfg.CAFile, cfg.ClientCertFile, cfg.ClientKeyFile, t.rebuild)
	if err != nil {
		return nil, err
	}
	t.creds = creds
	rts, err := t.build()
	if err != nil {
		return nil, err
	}
	t.current.Store(rts)
	return t, nil
}

// rebuild swaps in new transports after a certificate reload; requests
// under way finish on the old ones, whose idle connections close now.
func (t *Transports) rebuild() {
	rts, err := t.build()
	if err != nil {
		klog.ErrorS(err, "Rebuilding the peer transports after a certificate reload; keeping the previous ones")
		return
	}
	if old := t.current.Swap(rts); old != nil {
		for _, o := range []*http.Transport{old.h2, old.h1, old.discovery} {
			o.CloseIdleConnections()
		}
	}
}

func (t *Transports) build() (*roundTrippers, error) {
	h2, err := t.newH2()
	if err != nil {
		return nil, err
	}
	disc, err := t.newH2()
	if err != nil {
		return nil, err
	}
	h1TLS := t.creds.tlsConfig()
	h1TLS.NextProtos = []string{"http/1.1"}
	rts := &roundTrippers{h2: h2, h1: t.newBase(h1TLS), discovery: disc}
	check := func(rt http.RoundTripper) http.RoundTripper {
		return identityChecked{rt: rt, userHeader: t.userHeader, cert: t.ClientCertName}
	}
	rts.checked.h2, rts.checked.h1, rts.checked.discovery = check(rts.h2), check(rts.h1), check(rts.discovery)
	return rts, nil
}

func (t *Transports) newBase(tc *tls.Config) *http.Transport {
	h := &http.Transport{
		TLSClientConfig:     tc,
		MaxIdleConnsPerHost: 64,
		IdleConnTimeout:     90 * time.Second,
		// The body is relayed as the peer sent it.
		DisableCompression: true,
	}
	// Read at dial time: http2.ConfigureTransports adds h2 to its NextProtos.
	h.DialTLSContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
		return t.dialTLS(ctx, h.TLSClientConfig, network, addr)
	}
	return h
}

func (t *Transports) newH2() (*http.Transport, error) {
	h := t.newBase(t.creds.tlsConfig())
	h2, err := http2.ConfigureTransports(h)
	if err != nil {
		return nil, err
	}
	h2.ReadIdleTimeout = PingAfter
	h2.PingTimeout = PingTimeout
	return h, nil
}

// dialTLS connects to a peer and completes the TLS handshake; any failure
// is a *peerDialError, so failover knows no request reached the peer.
func (t *Transports) dialTLS(ctx context.Context, tc *tls.Config, network, addr string) (net.Conn, error) {
	raw, err := t.dial(ctx, network, addr)
	if err != nil {
		return nil, &peerDialError{addr: addr, err: err}
	}
	conn := tls.Client(raw, tc.Clone())
	hctx, cancel := context.WithTimeout(ctx, tlsTimeout)
	defer cancel()
	if err := conn.HandshakeContext(hctx); err != nil {
		raw.Close()
		return nil, &peerDialError{addr: addr, err: err}
	}
	return conn, nil
}

// Run reloads the certificates when their files change, until ctx ends.
func (t *Transports) Run(ctx context.Context) { t.creds.Run(ctx) }

// For is the round-tripper r goes out on: HTTP/1.1 for a protocol upgrade
// (exec, attach, port-forward), else HTTP/2. It is the current one: a
// certificate reload replaces it.
func (t *Transports) For(r *http.Request) http.RoundTripper {
	rts := t.current.Load()
	if isUpgrade(r) {
		return rts.checked.h1
	}
	return rts.checked.h2
}

func isUpgrade(r *http.Request) bool {
	return strings.Contains(strings.ToLower(r.Header.Get("Connection")), "upgrade") && r.Header.Get("Upgrade") != ""
}

// ClientCertName names the client certificate this server presents, for
// errors.
func (t *Transports) ClientCertName() string { return t.creds.clientCertName() }

// ForDiscovery is the round-tripper discovery fetches use.
func (t *Transports) ForDiscovery() http.RoundTripper {
	return roundTripperFunc(func(r *http.Request) (*http.Response, error) { return t.current.Load().checked.discovery.RoundTrip(r) })
}

type roundTripperFunc func(*http.Request) (*http.Response, error)

func (f roundTripperFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }
