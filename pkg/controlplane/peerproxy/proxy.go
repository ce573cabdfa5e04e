package peerproxy

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/net/http2"

	"k8s.io/apiserver/pkg/authentication/user"
	"k8s.io/apiserver/pkg/endpoints/request"
)

// peerServerName is the name peers' serving certificates are verified
// against: every kube-apiserver certificate carries it.
const peerServerName = "kubernetes.default.svc"

// Timeouts that bound how long a dead or frozen peer can hold a request,
// without ever cutting short a slow but live one (no response timeout).
const (
	dialTimeout = 3 * time.Second
	tlsTimeout  = 3 * time.Second
	// HTTP/2 pings after this much silence on a connection...
	pingAfter = 4 * time.Second
	// ...and close it if the ping is not answered in time.
	pingTimeout = 3 * time.Second
)

// ProxyConfig is how this server reaches its peers.
type ProxyConfig struct {
	// CABundle verifies peers' serving certificates (PEM).
	CABundle []byte
	// ClientCertFile/ClientKeyFile: the front-proxy client certificate.
	ClientCertFile, ClientKeyFile string
	// DialContext dials peers: the egress selector's controlplane dialer,
	// or nil to dial directly. Proxied requests and discovery fetches
	// both go through it.
	DialContext func(ctx context.Context, network, addr string) (net.Conn, error)
	// EgressProxy names the proxy DialContext goes through, for errors.
	EgressProxy string
}

// transports are built once: one HTTP/2 transport for ordinary requests,
// one HTTP/1.1 transport for protocol upgrades (exec, attach, port-forward),
// and one HTTP/2 transport of its own for discovery fetches, so that a
// large proxied response never holds up a fetch on a shared connection.
type transports struct {
	h2, h1, discovery http.RoundTripper
}

func newTransports(cfg ProxyConfig) (*transports, error) {
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(cfg.CABundle) {
		return nil, errors.New("peer CA bundle holds no certificate")
	}
	cert, err := tls.LoadX509KeyPair(cfg.ClientCertFile, cfg.ClientKeyFile)
	if err != nil {
		return nil, fmt.Errorf("loading the proxy client certificate: %w", err)
	}
	tlsConfig := &tls.Config{
		RootCAs:      pool,
		Certificates: []tls.Certificate{cert},
		ServerName:   peerServerName,
		MinVersion:   tls.VersionTLS12,
	}
	dial := (&net.Dialer{Timeout: dialTimeout, KeepAlive: 30 * time.Second}).DialContext
	if cfg.DialContext != nil {
		dial = throughEgress(cfg.DialContext, cfg.EgressProxy, egressDialTimeout)
	}
	newBase := func(tc *tls.Config) *http.Transport {
		return &http.Transport{
			DialContext:         dial,
			TLSClientConfig:     tc,
			TLSHandshakeTimeout: tlsTimeout,
			MaxIdleConnsPerHost: 64,
			IdleConnTimeout:     90 * time.Second,
			// The body is relayed as the peer sent it.
			DisableCompression: true,
		}
	}
	newH2 := func() (*http.Transport, error) {
		t := newBase(tlsConfig.Clone())
		t2, err := http2.ConfigureTransports(t)
		if err != nil {
			return nil, err
		}
		t2.ReadIdleTimeout = pingAfter
		t2.PingTimeout = pingTimeout
		return t, nil
	}
	h2, err := newH2()
	if err != nil {
		return nil, err
	}
	disc, err := newH2()
	if err != nil {
		return nil, err
	}
	h1TLS := tlsConfig.Clone()
	h1TLS.NextProtos = []string{"http/1.1"}
	h1 := newBase(h1TLS)
	return &transports{h2: h2, h1: h1, discovery: disc}, nil
}

// attemptKey carries the route's peers and the attempt record through the
// reverse proxy to the failover round-tripper.
type attemptKey struct{}

// attempt records what happened to one proxied request.
type attempt struct {
	route Route
	// tried lists the peer IDs tried, in order; served is the one that answered.
	tried  []string
	served string
	// lastErr is the last transport failure.
	lastErr error
}

// failover sends a request to the route's peers in turn: healthy ones
// first, starting at a random one so load spreads. It moves on when a
// peer could not be reached (dial, TLS, refused), and, for GET and HEAD,
// on any transport failure before a response. A request whose body
// reached a peer, or a write that may have arrived, is never sent again.
type failover struct {
	t      *transports
	health *health
}

func (f *failover) RoundTrip(req *http.Request) (*http.Response, error) {
	a, _ := req.Context().Value(attemptKey{}).(*attempt)
	if a == nil {
		return nil, errors.New("peer proxy: request without a route")
	}
	rt := f.t.h2
	if isUpgrade(req) {
		rt = f.t.h1
	}
	var body *countingBody
	if req.Body != nil && req.Body != http.NoBody {
		body = &countingBody{r: req.Body}
		req.Body = body
	}
	for _, p := range f.health.order(a.route.Peers) {
		if err := req.Context().Err(); err != nil {
			return nil, err
		}
		// A shallow copy with its own URL: the reverse proxy's outgoing
		// request is already private to this call, headers included.
		out := req.WithContext(req.Context())
		u := *req.URL
		u.Host = p.Address
		out.URL, out.Host = &u, p.Address
		a.tried = append(a.tried, p.ID)
		resp, err := rt.RoundTrip(out)
		if err == nil {
			f.health.succeeded(p.ID)
			a.served = p.ID
			return resp, nil
		}
		a.lastErr = fmt.Errorf("peer %s at %s: %w", p.ID, p.Address, err)
		f.health.failed(p.ID, err)
		if body != nil && body.n.Load() > 0 {
			return nil, a.lastErr // the body reached a peer: never resend it
		}
		if !unreachable(err) && !safeMethod(req.Method) {
			return nil, a.lastErr // a write that may have arrived: not retried
		}
	}
	if a.lastErr == nil {
		a.lastErr = errors.New("no peer to try")
	}
	return nil, a.lastErr
}

// unreachable: the request certainly did not reach the peer's handler.
func unreachable(err error) bool {
	var opErr *net.OpError
	if errors.As(err, &opErr) && opErr.Op == "dial" {
		return true
	}
	var certErr *tls.CertificateVerificationError
	var unknownAuth x509.UnknownAuthorityError
	var hostErr x509.HostnameError
	var recordErr tls.RecordHeaderError
	var egressErr *egressError
	if errors.As(err, &egressErr) {
		return true
	}
	if errors.As(err, &certErr) || errors.As(err, &unknownAuth) || errors.As(err, &hostErr) || errors.As(err, &recordErr) {
		return true
	}
	msg := err.Error()
	return strings.Contains(msg, "connection refused") || strings.Contains(msg, "TLS handshake timeout") ||
		strings.Contains(msg, "tls: ") || strings.Contains(msg, "proxyconnect")
}

// safeMethod: a request that changes nothing, so sending it again is harmless.
func safeMethod(m string) bool { return m == http.MethodGet || m == http.MethodHead }

func isUpgrade(r *http.Request) bool {
	return strings.Contains(strings.ToLower(r.Header.Get("Connection")), "upgrade") && r.Header.Get("Upgrade") != ""
}

// countingBody counts the bytes of the request body handed to a transport.
type countingBody struct {
	r io.ReadCloser
	n atomic.Int64
}

func (c *countingBody) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n.Add(int64(n))
	return n, err
}

// Close is a no-op: a transport closes the body when a dial fails, yet the
// same body must go to the next peer. The server closes the original.
func (c *countingBody) Close() error { return nil }

// Front-proxy headers: the only way the caller's identity travels to a peer.
const (
	headerUser   = "X-Remote-User"
	headerUID    = "X-Remote-Uid"
	headerGroup  = "X-Remote-Group"
	headerExtra  = "X-Remote-Extra-"
	remotePrefix = "X-Remote-"
)

// setForwardHeaders strips every credential the caller sent and adds the
// authenticated user as front-proxy headers, plus both reroute markers.
func setForwardHeaders(h http.Header, u user.Info) {
	for k := range h {
		lk := strings.ToLower(k)
		if lk == "authorization" || lk == "cookie" || lk == "proxy-authorization" ||
			strings.HasPrefix(lk, "impersonate-") || strings.HasPrefix(lk, strings.ToLower(remotePrefix)) {
			delete(h, k)
		}
	}
	if u != nil {
		h.Set(headerUser, u.GetName())
		if uid := u.GetUID(); uid != "" {
			h.Set(headerUID, uid)
		}
		for _, g := range u.GetGroups() {
			h.Add(headerGroup, g)
		}
		for k, vs := range u.GetExtra() {
			name := headerExtra + url.PathEscape(k)
			for _, v := range vs {
				h.Add(name, v)
			}
		}
	}
	h.Set(HeaderRerouted, "true")
	h.Set(HeaderPeerProxied, "true")
}

// newReverseProxy relays requests through failover, streaming both ways.
// A response of unknown length (watch, a streamed LIST) is flushed on every
// write, so events arrive as they happen; one of known length goes out as
// the server's buffer fills and at its end, so a small object leaves in one
// write instead of three (headers, body, end of stream).
func newReverseProxy(f *failover, onError func(http.ResponseWriter, *http.Request, error)) *httputil.ReverseProxy {
	return &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.Out.URL.Scheme = "https"
			pr.Out.URL.Host = "peer" // replaced per attempt
			u, _ := request.UserFrom(pr.In.Context())
			setForwardHeaders(pr.Out.Header, u)
		},
		Transport:    f,
		ErrorHandler: onError,
		BufferPool:   copyBuffers,
	}
}

// copyBuffers recycles the buffers responses are relayed through; without
// it the reverse proxy allocates 32 KiB per request, a fifth of the bytes
// this server allocated while proxying small objects (docs/performance.md).
var copyBuffers = &bufferPool{pool: sync.Pool{New: func() any { b := make([]byte, 32<<10); return &b }}}

type bufferPool struct{ pool sync.Pool }

func (p *bufferPool) Get() []byte  { return *p.pool.Get().(*[]byte) }
func (p *bufferPool) Put(b []byte) { p.pool.Put(&b) }
