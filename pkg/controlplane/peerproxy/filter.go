package peerproxy

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httputil"
	"strings"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apiserver/pkg/endpoints/handlers/responsewriters"
	"k8s.io/apiserver/pkg/endpoints/request"
)

// Retry-After (seconds) on the proxy's 503s.
const (
	retryAfterNoPeer = 5
	retryAfterFailed = 2
)

// Error types, the `type` label of apiserver_peer_proxy_errors_total.
const (
	errNoLivePeer     = "no_live_peer"
	errUntrustedCert  = "untrusted_certificate"
	errTimeout        = "timeout"
	errUnreachable    = "unreachable"
	errRequestFailure = "request_failed"
	errEgressProxy    = "egress_proxy"
	// The peer treated the proxied request as anonymous.
	errClientCertRefused = "client_certificate_refused"
)

// filter routes each request: serve here, proxy to a peer, or 503.
type filter struct {
	next       http.Handler
	table      *PeerTable
	proxy      *httputil.ReverseProxy
	serializer runtime.NegotiatedSerializer
	// discovery serves merged discovery; discoveryCodecs negotiates it.
	discovery       *PeerDiscovery
	discoveryCodecs runtime.NegotiatedSerializer
}

// WithPeerProxy wraps next with the Mixed Version Proxy. It must sit where
// RequestInfo and the authenticated user are in the request context.
func (m *MixedVersionProxy) WithPeerProxy(next http.Handler) http.Handler {
	if m.proxy == nil {
		return next
	}
	f := &filter{next: next, table: m.table, serializer: m.cfg.Serializer, discovery: m.discovery, discoveryCodecs: newDiscoveryCodecs()}
	f.proxy = newReverseProxy(m.proxy, m.cfg.Proxy.Headers, f.proxyFailed)
	return f
}

func (f *filter) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	info, _ := request.RequestInfoFrom(r.Context())
	if (info == nil || !info.IsResourceRequest) && (r.Method == http.MethodGet || r.Method == http.MethodHead) &&
		!Rerouted(r.Header) && f.serveDiscovery(w, r) {
		return
	}
	snap := f.table.Snapshot()
	route := Decide(info, Rerouted(r.Header), snap)
	switch route.Decision {
	case Local:
		f.next.ServeHTTP(w, r)
	case Unavailable:
		countError(r.Context(), errNoLivePeer, route.GVR)
		countRerouted(r.Context(), http.StatusServiceUnavailable, route.GVR)
		msg := fmt.Sprintf("%s is served in this cluster, but by no live kube-apiserver (registered by %s); retry later",
			GVRKey(route.GVR), strings.Join(snap.Servers(route.GVR), ", "))
		f.writeStatus(w, r, msg, retryAfterNoPeer)
	case Proxy:
		f.proxyRoute(w, r, route)
	}
}

// proxyRoute forwards r to one of the route's peers.
func (f *filter) proxyRoute(w http.ResponseWriter, r *http.Request, route Route) {
	a := &attempt{route: route}
	rec := &codeRecorder{ResponseWriter: w}
	start := time.Now()
	f.proxy.ServeHTTP(rec, r.WithContext(context.WithValue(r.Context(), attemptKey{}, a)))
	code := rec.code
	if code == 0 {
		code = http.StatusOK
	}
	countRerouted(r.Context(), code, route.GVR)
	proxyDuration.WithLabelValues(route.GVR.Group, route.GVR.Version, route.GVR.Resource).Observe(time.Since(start).Seconds())
}

// proxyFailed answers when no peer could be reached or answer: a 503 with
// the cause, never a 404. The reverse proxy calls it only before any byte
// of the response was written, so nothing is written twice.
func (f *filter) proxyFailed(w http.ResponseWriter, r *http.Request, err error) {
	a, _ := r.Context().Value(attemptKey{}).(*attempt)
	if a == nil {
		a = &attempt{}
	}
	if a.lastErr != nil {
		err = a.lastErr
	}
	kind, cause := classify(err)
	if r.Context().Err() != nil {
		kind, cause = errRequestFailure, "the client went away"
	}
	countError(r.Context(), kind, a.route.GVR)
	msg := fmt.Sprintf("%s is not served by this kube-apiserver and no peer could serve it: %s (tried %d of %d capable peers: %s): %v",
		GVRKey(a.route.GVR), cause, len(a.tried), len(a.route.Peers), strings.Join(a.tried, ", "), err)
	f.writeStatus(w, r, msg, retryAfterFailed)
}

func (f *filter) writeStatus(w http.ResponseWriter, r *http.Request, msg string, retryAfter int32) {
	err := &apierrors.StatusError{ErrStatus: metav1.Status{
		Status:  metav1.StatusFailure,
		Code:    http.StatusServiceUnavailable,
		Reason:  metav1.StatusReasonServiceUnavailable,
		Message: msg,
		Details: &metav1.StatusDetails{RetryAfterSeconds: retryAfter},
	}}
	responsewriters.ErrorNegotiated(err, f.serializer, schema.GroupVersion{Version: "v1"}, w, r)
}

// classify names the cause of a proxying failure for operators.
func classify(err error) (kind, cause string) {
	var unknownAuth x509.UnknownAuthorityError
	var certErr *tls.CertificateVerificationError
	var hostErr x509.HostnameError
	var netErr net.Error
	var egressErr *egressError
	var refused *identityRefusedError
	var unsendable *unsendableError
	switch {
	case errors.As(err, &unsendable):
		return errRequestFailure, "the request cannot be sent to a peer"
	case errors.As(err, &refused):
		return errClientCertRefused, "the peer did not accept this server's proxy client certificate"
	case errors.As(err, &egressErr):
		// First: its cause may be a timeout, but the proxy is what failed.
		return errEgressProxy, "the egress proxy (" + egressErr.proxy + ") opened no tunnel to the peer"
	case errors.As(err, &unknownAuth), errors.As(err, &certErr), errors.As(err, &hostErr):
		return errUntrustedCert, "the peer's certificate is not trusted by --peer-ca-file"
	case errors.Is(err, context.DeadlineExceeded), errors.As(err, &netErr) && netErr.Timeout(),
		strings.Contains(err.Error(), "timeout"):
		return errTimeout, "the peer timed out"
	case strings.Contains(err.Error(), "client connection lost"):
		// HTTP/2 closes a connection whose health ping went unanswered.
		return errTimeout, "the peer stopped answering (health ping unanswered)"
	case unreachable(err):
		return errUnreachable, "the peer is unreachable"
	default:
		return errRequestFailure, "all capable peers failed"
	}
}

// codeRecorder remembers the status code; Unwrap keeps flushing and
// hijacking (watch, upgrades) working through it.
type codeRecorder struct {
	http.ResponseWriter
	code int
}

func (c *codeRecorder) WriteHeader(code int) {
	if c.code == 0 {
		c.code = code
	}
	c.ResponseWriter.WriteHeader(code)
}

func (c *codeRecorder) Write(b []byte) (int, error) {
	if c.code == 0 {
		c.code = http.StatusOK
	}
	return c.ResponseWriter.Write(b)
}

func (c *codeRecorder) Unwrap() http.ResponseWriter { return c.ResponseWriter }

// Flush is forwarded so streaming does not depend on Unwrap support.
func (c *codeRecorder) Flush() {
	if fl, ok := c.ResponseWriter.(http.Flusher); ok {
		fl.Flush()
	}
}
