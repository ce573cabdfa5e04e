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
	"fmt"
	"net"
	"net/http"
	"net/http/httputil"
	"strings"
	"sync"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apiserver/pkg/endpoints/handlers/responsewriters"
	"k8s.io/apiserver/pkg/endpoints/request"
	utilflowcontrol "k8s.io/apiserver/pkg/util/flowcontrol"
	"k8s.io/klog/v2"

	"github.com/mvp-apiserver/kube-apiserver/pkg/controlplane/peerproxy/peerclient"
	"github.com/mvp-apiserver/kube-apiserver/pkg/controlplane/peerproxy/peers"
)

// Retry-After (seconds) on the proxy's 503s.
const (
	retryAfterNoPeer = 5
	retryAfterFailed = 2
)

// Forwarder does what the filters decided: relay a request to one of its
// route's peers, or answer 503 when none can serve it. Never a 404.
type Forwarder struct {
	proxy *httputil.ReverseProxy
	// watch relays watches: its relay buffer is held for the stream's
	// whole life, so it is small (watchBuffers).
	watch      *httputil.ReverseProxy
	ender      *watchEnder
	serializer runtime.NegotiatedSerializer
}

// NewForwarder relays over t, trying peers in the order h gives, with the
// caller's identity in headers; serializer writes its Status answers as
// the client negotiated.
func NewForwarder(t *peerclient.Transports, h *Health, headers peerclient.FrontProxyHeaders, serializer runtime.NegotiatedSerializer) *Forwarder {
	f := &failover{t: t, health: h}
	return newForwarder(f, headers, serializer)
}

func newForwarder(f *failover, headers peerclient.FrontProxyHeaders, serializer runtime.NegotiatedSerializer) *Forwarder {
	fw := &Forwarder{serializer: serializer, ender: newWatchEnder()}
	fw.proxy = newReverseProxy(f, headers, fw.failed, copyBuffers)
	fw.watch = newReverseProxy(f, headers, fw.failed, watchBuffers)
	fw.watch.ModifyResponse = endAtShutdown
	return fw
}

// Forward relays r, a request for gvr, to one of candidates (live peers
// that serve it) and counts the answer.
func (fw *Forwarder) Forward(w http.ResponseWriter, r *http.Request, gvr schema.GroupVersionResource, candidates []*peers.Peer) {
	// The peer's priority and fairness admits the request; here a watch
	// would hold a seat, and a goroutine, until storage reported it set
	// up, which for a relayed watch is never before it ends. Report it now,
	// as the aggregator does for what it delegates.
	utilflowcontrol.RequestDelegated(r.Context())
	a := &attempt{gvr: gvr, peers: candidates}
	rec := &codeRecorder{ResponseWriter: w}
	start := time.Now()
	p := fw.proxy
	ctx := context.WithValue(r.Context(), attemptKey{}, a)
	if info, ok := request.RequestInfoFrom(r.Context()); ok && info.Verb == "watch" {
		p = fw.watch
		var release func()
		ctx, release = fw.ender.track(ctx, a)
		defer release()
	}
	// One copy of the request for both: a watch holds it for its life.
	p.ServeHTTP(rec, r.WithContext(ctx))
	code := rec.code
	if code == 0 {
		code = http.StatusOK
	}
	countRerouted(r.Context(), code, gvr)
	proxyDuration.WithLabelValues(gvr.Group, gvr.Version, gvr.Resource).Observe(time.Since(start).Seconds())
}

// Unavailable answers that what gvr names exists in the cluster but no
// live server serves it: 503 with Retry-After, so clients come back.
func (fw *Forwarder) Unavailable(w http.ResponseWriter, r *http.Request, gvr schema.GroupVersionResource, registeredBy []string) {
	countError(r.Context(), peerclient.KindNoLivePeer, gvr)
	countRerouted(r.Context(), http.StatusServiceUnavailable, gvr)
	what := peers.GVRKey(gvr)
	if gvr.Resource == "" {
		what = gvr.GroupVersion().String()
	}
	msg := what + " is served in this cluster, but by no live kube-apiserver; retry later"
	if len(registeredBy) > 0 {
		msg = fmt.Sprintf("%s is served in this cluster, but by no live kube-apiserver (registered by %s); retry later", what, strings.Join(registeredBy, ", "))
	}
	fw.writeStatus(w, r, msg, retryAfterNoPeer)
}

// failed answers when no peer could be reached or answer: a 503 with the
// cause. The reverse proxy calls it only before any byte of the response
// was written, so nothing is written twice.
func (fw *Forwarder) failed(w http.ResponseWriter, r *http.Request, err error) {
	a, _ := r.Context().Value(attemptKey{}).(*attempt)
	if a == nil {
		a = &attempt{}
	}
	if a.lastErr != nil {
		err = a.lastErr
	}
	f := peerclient.Classify(err)
	switch {
	case a.endedByShutdown.Load():
		f = peerclient.Failure{Kind: peerclient.KindRequestFailed, Cause: "this kube-apiserver began to stop"}
	case r.Context().Err() != nil:
		f = peerclient.Failure{Kind: peerclient.KindRequestFailed, Cause: "the client went away"}
	}
	countError(r.Context(), f.Kind, a.gvr)
	// The answer names peers by ID and says why each failed; their
	// addresses and the errors themselves are for operators, in the log
	// and in /debug/peerproxy, not for every caller who may read the API.
	klog.V(2).InfoS("No peer could serve a proxied request", "resource", peers.GVRKey(a.gvr), "tried", a.tried, "err", err)
	msg := fmt.Sprintf("%s is not served by this kube-apiserver and no peer could serve it: %s (tried %d of %d capable peers",
		peers.GVRKey(a.gvr), f.Cause, len(a.tried), len(a.peers))
	if len(a.reasons) > 0 {
		msg += ": " + strings.Join(a.reasons, "; ")
	}
	msg += "); each peer's last error is in /debug/peerproxy"
	fw.writeStatus(w, r, msg, retryAfterFailed)
}

func (fw *Forwarder) writeStatus(w http.ResponseWriter, r *http.Request, msg string, retryAfter int32) {
	err := &apierrors.StatusError{ErrStatus: metav1.Status{
		Status:  metav1.StatusFailure,
		Code:    http.StatusServiceUnavailable,
		Reason:  metav1.StatusReasonServiceUnavailable,
		Message: msg,
		Details: &metav1.StatusDetails{RetryAfterSeconds: retryAfter},
	}}
	responsewriters.ErrorNegotiated(err, fw.serializer, schema.GroupVersion{Version: "v1"}, w, r)
}

// newReverseProxy relays requests through failover, streaming both ways.
// A response of unknown length (watch, a streamed LIST) is flushed on every
// write, so events arrive as they happen; one of known length goes out as
// the server's buffer fills and at its end, so a small object leaves in one
// write instead of three (headers, body, end of stream).
func newReverseProxy(f *failover, headers peerclient.FrontProxyHeaders, onError func(http.ResponseWriter, *http.Request, error), buffers httputil.BufferPool) *httputil.ReverseProxy {
	return &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.Out.URL.Scheme = "https"
			pr.Out.URL.Host = "peer" // replaced per attempt
			u, _ := request.UserFrom(pr.In.Context())
			headers.SetForwardHeaders(pr.Out.Header, u, pr.In.Header.Values(peerclient.HeaderXForwardedFor), pr.In.RemoteAddr)
		},
		Transport:    f,
		ErrorHandler: onError,
		BufferPool:   buffers,
	}
}

// copyBuffers recycles the buffers responses are relayed through; without
// it the reverse proxy allocates 32 KiB per request, a fifth of the bytes
// this server allocated while proxying small objects (docs/performance.md).
var copyBuffers = newBufferPool(32 << 10)

// watchBuffers relay watches. A watch holds its buffer for as long as it
// runs, and most events are small: 32 KiB was most of a proxied watch's
// heap on the proxying server, and 4 KiB was still its largest single part
// (docs/performance.md). An event larger than the buffer is relayed in
// several writes.
var watchBuffers = newBufferPool(2 << 10)

func newBufferPool(size int) *bufferPool {
	return &bufferPool{pool: sync.Pool{New: func() any { b := make([]byte, size); return &b }}}
}

type bufferPool struct{ pool sync.Pool }

func (p *bufferPool) Get() []byte  { return *p.pool.Get().(*[]byte) }
func (p *bufferPool) Put(b []byte) { p.pool.Put(&b) }

// codeRecorder remembers the final status code: not an informational 1xx
// the peer sent first (103 Early Hints), and 101 for a protocol upgrade,
// whose answer the reverse proxy writes on the hijacked connection. Unwrap
// keeps flushing and hijacking (watch, upgrades) working through it.
type codeRecorder struct {
	http.ResponseWriter
	code int
}

func (c *codeRecorder) WriteHeader(code int) {
	if c.code == 0 && code >= http.StatusOK {
		c.code = code
	}
	c.ResponseWriter.WriteHeader(code)
}

// Hijack is how the reverse proxy takes over the connection for an
// upgrade, once the peer answered 101.
func (c *codeRecorder) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	conn, rw, err := http.NewResponseController(c.ResponseWriter).Hijack()
	if err == nil && c.code == 0 {
		c.code = http.StatusSwitchingProtocols
	}
	return conn, rw, err
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
