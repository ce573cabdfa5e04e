package peerproxy

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/net/http2"

	"k8s.io/apiserver/pkg/authentication/user"
	"k8s.io/apiserver/pkg/endpoints/request"
	"k8s.io/klog/v2"
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

// transports are the connections to peers: one HTTP/2 transport for
// ordinary requests, one HTTP/1.1 transport for protocol upgrades (exec,
// attach, port-forward), and one HTTP/2 transport of its own for discovery
// fetches, so that a large proxied response never holds up a fetch on a
// shared connection. All three are built anew when a certificate is
// reloaded: no request after a reload goes out on an older connection.
type transports struct {
	creds   *credentials
	dial    dialFunc
	current atomic.Pointer[roundTrippers]
}

type roundTrippers struct {
	h2, h1, discovery *http.Transport
}

func newTransports(cfg ProxyConfig) (*transports, error) {
	t := &transports{dial: (&net.Dialer{Timeout: dialTimeout, KeepAlive: 30 * time.Second}).DialContext}
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
func (t *transports) rebuild() {
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

func (t *transports) build() (*roundTrippers, error) {
	newBase := func(tc *tls.Config) *http.Transport {
		return &http.Transport{
			DialContext:         t.dial,
			TLSClientConfig:     tc,
			TLSHandshakeTimeout: tlsTimeout,
			MaxIdleConnsPerHost: 64,
			IdleConnTimeout:     90 * time.Second,
			// The body is relayed as the peer sent it.
			DisableCompression: true,
		}
	}
	newH2 := func() (*http.Transport, error) {
		h := newBase(t.creds.tlsConfig())
		h2, err := http2.ConfigureTransports(h)
		if err != nil {
			return nil, err
		}
		h2.ReadIdleTimeout = pingAfter
		h2.PingTimeout = pingTimeout
		return h, nil
	}
	h2, err := newH2()
	if err != nil {
		return nil, err
	}
	disc, err := newH2()
	if err != nil {
		return nil, err
	}
	h1TLS := t.creds.tlsConfig()
	h1TLS.NextProtos = []string{"http/1.1"}
	return &roundTrippers{h2: h2, h1: newBase(h1TLS), discovery: disc}, nil
}

// forDiscovery is the round-tripper discovery fetches use.
func (t *transports) forDiscovery() http.RoundTripper {
	return roundTripperFunc(func(r *http.Request) (*http.Response, error) { return t.current.Load().discovery.RoundTrip(r) })
}

type roundTripperFunc func(*http.Request) (*http.Response, error)

func (f roundTripperFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

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
// peer could not be reached (dial, TLS, refused) or did not accept this
// server's client certificate, and, for GET and HEAD, on any transport
// failure before a response. A request whose body reached a peer, or a
// write that may have arrived, is never sent again. Only a peer's own
// faults put it in backoff: not the caller going away, not the request's
// deadline, not a request that cannot be sent at all.
type failover struct {
	t      *transports
	health *health
}

func (f *failover) RoundTrip(req *http.Request) (*http.Response, error) {
	a, _ := req.Context().Value(attemptKey{}).(*attempt)
	if a == nil {
		return nil, errors.New("peer proxy: request without a route")
	}
	if bad := invalidHeader(req.Header); bad != "" {
		a.lastErr = &unsendableError{what: bad}
		return nil, a.lastErr
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
		rts := f.t.current.Load()
		rt := rts.h2
		if isUpgrade(req) {
			rt = rts.h1
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
			if resp, err = f.checkIdentityAccepted(req, resp); err == nil {
				f.health.succeeded(p.ID)
				a.served = p.ID
				return resp, nil
			}
		}
		a.lastErr = fmt.Errorf("peer %s at %s: %w", p.ID, p.Address, err)
		if req.Context().Err() != nil {
			return nil, a.lastErr // the caller left, or its deadline passed
		}
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

// checkIdentityAccepted turns a peer's answer into an error when the peer
// did not take the front-proxy identity: a 401, or a 403 for
// system:anonymous, for a caller who is someone else. That is what a peer
// answers when it does not trust this server's client certificate (a
// rotated front-proxy CA, say); the request did nothing there.
func (f *failover) checkIdentityAccepted(req *http.Request, resp *http.Response) (*http.Response, error) {
	if resp.StatusCode != http.StatusUnauthorized && resp.StatusCode != http.StatusForbidden {
		return resp, nil
	}
	if u, ok := request.UserFrom(req.Context()); !ok || u.GetName() == user.Anonymous {
		return resp, nil
	}
	if resp.StatusCode == http.StatusForbidden {
		head := make([]byte, 4<<10)
		n, _ := io.ReadFull(resp.Body, head)
		head = head[:n]
		if !bytes.Contains(head, []byte(user.Anonymous)) {
			resp.Body = struct {
				io.Reader
				io.Closer
			}{io.MultiReader(bytes.NewReader(head), resp.Body), resp.Body}
			return resp, nil // a real user's own 403
		}
	}
	resp.Body.Close()
	return nil, &identityRefusedError{code: resp.StatusCode, clientCert: f.t.creds.clientCertName()}
}

// identityRefusedError: the peer treated the request as anonymous.
type identityRefusedError struct {
	code       int
	clientCert string
}

func (e *identityRefusedError) Error() string {
	return fmt.Sprintf("answered %d as if for system:anonymous: it did not accept this server's proxy client certificate (%s); its --requestheader-client-ca-file must hold the issuer and --requestheader-allowed-names the subject's CN",
		e.code, e.clientCert)
}

// unsendableError: the request cannot be sent to any peer as it is.
type unsendableError struct{ what string }

func (e *unsendableError) Error() string {
	return "the request cannot be forwarded: " + e.what + " is not valid in an HTTP request"
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
	var refused *identityRefusedError
	if errors.As(err, &egressErr) || errors.As(err, &refused) {
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

// newReverseProxy relays requests through failover, streaming both ways.
// A response of unknown length (watch, a streamed LIST) is flushed on every
// write, so events arrive as they happen; one of known length goes out as
// the server's buffer fills and at its end, so a small object leaves in one
// write instead of three (headers, body, end of stream).
func newReverseProxy(f *failover, headers FrontProxyHeaders, onError func(http.ResponseWriter, *http.Request, error)) *httputil.ReverseProxy {
	return &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.Out.URL.Scheme = "https"
			pr.Out.URL.Host = "peer" // replaced per attempt
			u, _ := request.UserFrom(pr.In.Context())
			headers.setForwardHeaders(pr.Out.Header, u, pr.In.Header.Values(headerXForwardedFor), pr.In.RemoteAddr)
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
