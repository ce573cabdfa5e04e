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
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
)

// Failure kinds: the `type` label of apiserver_peer_proxy_errors_total and
// the `result` label of apiserver_peer_discovery_fetches_total.
const (
	KindNoLivePeer    = "no_live_peer"
	KindUntrustedCert = "untrusted_certificate"
	KindTimeout       = "timeout"
	KindUnreachable   = "unreachable"
	KindRequestFailed = "request_failed"
	KindEgressProxy   = "egress_proxy"
	// The peer treated the proxied request as anonymous.
	KindClientCertRefused = "client_certificate_refused"
	// A peer answered discovery with something that is not discovery.
	KindBadResponse = "bad_response"
)

// Failure is what went wrong talking to a peer, for every reader of it:
// failover (undelivered), metrics (kind) and messages (cause).
type Failure struct {
	// Kind is the metrics label; Cause says it in words.
	Kind, Cause string
	// Undelivered: the request certainly never reached the peer's
	// handler, so sending it elsewhere cannot do anything twice.
	Undelivered bool
}

// Classify names err, a failure of one request to one peer.
func Classify(err error) Failure {
	var unsendable *UnsendableError
	var refused *IdentityRefusedError
	var egress *egressError
	var dial *peerDialError
	var bad *badResponseError
	switch {
	case errors.As(err, &unsendable):
		return Failure{Kind: KindRequestFailed, Cause: "the request cannot be sent to a peer"}
	case errors.As(err, &refused):
		return Failure{Kind: KindClientCertRefused, Cause: "the peer did not accept this server's proxy client certificate (" + refused.ClientCert + ")", Undelivered: true}
	case errors.As(err, &egress):
		// First: its cause may be a timeout, but the proxy is what failed.
		return Failure{Kind: KindEgressProxy, Cause: "the egress proxy (" + egress.proxy + ") opened no tunnel to the peer", Undelivered: true}
	case untrustedCert(err):
		return Failure{Kind: KindUntrustedCert, Cause: "the peer's certificate is not trusted by --peer-ca-file", Undelivered: true}
	case errors.As(err, &bad):
		return Failure{Kind: KindBadResponse, Cause: "the peer answered something else than discovery"}
	case errors.As(err, &dial):
		if timeout(err) {
			return Failure{Kind: KindTimeout, Cause: "the peer did not answer the connection in time", Undelivered: true}
		}
		return Failure{Kind: KindUnreachable, Cause: "the peer is unreachable", Undelivered: true}
	case timeout(err):
		return Failure{Kind: KindTimeout, Cause: "the peer timed out"}
	case connectionLost(err):
		return Failure{Kind: KindTimeout, Cause: "the peer stopped answering (health ping unanswered)"}
	default:
		return Failure{Kind: KindRequestFailed, Cause: "all capable peers failed"}
	}
}

// Retryable reports whether a request that failed this way at one peer
// may go to the next: never once its body reached a peer; otherwise when
// it certainly did not arrive, or when sending it again changes nothing.
func (f Failure) Retryable(method string, bodySent bool) bool {
	if bodySent {
		return false
	}
	return f.Undelivered || safeMethod(method)
}

// safeMethod: a request that changes nothing, so sending it again is harmless.
func safeMethod(m string) bool { return m == http.MethodGet || m == http.MethodHead }

func untrustedCert(err error) bool {
	var certErr *tls.CertificateVerificationError
	var unknownAuth x509.UnknownAuthorityError
	var hostErr x509.HostnameError
	return errors.As(err, &certErr) || errors.As(err, &unknownAuth) || errors.As(err, &hostErr)
}

func timeout(err error) bool {
	var netErr net.Error
	return errors.Is(err, context.DeadlineExceeded) || errors.As(err, &netErr) && netErr.Timeout()
}

// connectionLost: HTTP/2 closed a connection whose health ping went
// unanswered. golang.org/x/net/http2 exports no value for it.
func connectionLost(err error) bool {
	return strings.Contains(err.Error(), "http2: client connection lost")
}

// peerDialError: connecting to a peer failed (TCP, egress tunnel or TLS
// handshake), so no request reached it.
type peerDialError struct {
	addr string
	err  error
}

func (e *peerDialError) Error() string { return fmt.Sprintf("connecting to %s: %v", e.addr, e.err) }
func (e *peerDialError) Unwrap() error { return e.err }

// IdentityRefusedError: the peer treated the request as anonymous.
type IdentityRefusedError struct {
	Code       int
	ClientCert string
}

func (e *IdentityRefusedError) Error() string {
	return fmt.Sprintf("answered %d as if for system:anonymous: it did not accept this server's proxy client certificate (%s); its --requestheader-client-ca-file must hold the issuer and --requestheader-allowed-names the subject's CN",
		e.Code, e.ClientCert)
}

// UnsendableError: the request cannot be sent to any peer as it is.
type UnsendableError struct{ What string }

func (e *UnsendableError) Error() string {
	return "the request cannot be forwarded: " + e.What + " is not valid in an HTTP request"
}

// badResponseError: a peer's discovery answer was not what was asked for
// (as opposed to failing to reach it).
type badResponseError struct{ msg string }

func (e *badResponseError) Error() string { return "unexpected discovery response: " + e.msg }

func BadResponsef(format string, args ...any) error {
	return &badResponseError{msg: fmt.Sprintf(format, args...)}
}
