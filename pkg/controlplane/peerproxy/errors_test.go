package peerproxy

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"syscall"
	"testing"
)

// Errors as the transports produce them.
var (
	errRefused    = &peerDialError{addr: "127.0.0.2:6443", err: &net.OpError{Op: "dial", Net: "tcp", Err: syscall.ECONNREFUSED}}
	errDialSlow   = &peerDialError{addr: "127.0.0.2:6443", err: fmt.Errorf("tls handshake: %w", context.DeadlineExceeded)}
	errRefusedID  = &identityRefusedError{code: 403, clientCert: `subject "CN=front-proxy-client"`}
	errEgress     = &egressError{proxy: "unix:/run/konnectivity", addr: "127.0.0.2:6443", err: syscall.ECONNREFUSED}
	errUntrusted  = fmt.Errorf("tls: %w", x509.UnknownAuthorityError{})
	errBadDoc     = badResponsef("/apis answered %s, not aggregated discovery v2", "text/html")
	errDeadline   = fmt.Errorf("reading the answer: %w", context.DeadlineExceeded)
	errLost       = errors.New("http2: client connection lost")
	errUnsendable = &unsendableError{what: `the header name "X-Remote-Extra-a:b"`}
	errMidway     = fmt.Errorf("reading the answer: %w", io.ErrUnexpectedEOF)
)

func TestClassify(t *testing.T) {
	for _, tc := range []struct {
		err         error
		kind        string
		undelivered bool
	}{
		{errRefused, errUnreachable, true},
		{errDialSlow, errTimeout, true},
		{errRefusedID, errClientCertRefused, true},
		{errEgress, errEgressProxy, true},
		// The egress proxy failed, even when its cause is a timeout.
		{&egressError{proxy: "p", addr: "a", err: context.DeadlineExceeded}, errEgressProxy, true},
		{errUntrusted, errUntrustedCert, true},
		{errBadDoc, errBadResponse, false},
		{errDeadline, errTimeout, false},
		{errLost, errTimeout, false},
		{errUnsendable, errRequestFailure, false},
		{errMidway, errRequestFailure, false},
	} {
		f := classify(tc.err)
		if f.kind != tc.kind || f.undelivered != tc.undelivered || f.cause == "" {
			t.Errorf("classify(%v) = %+v, want kind %s, undelivered %t, and a cause", tc.err, f, tc.kind, tc.undelivered)
		}
	}
}

func TestRetryable(t *testing.T) {
	for _, tc := range []struct {
		method   string
		bodySent bool
		err      error
		want     bool
	}{
		// Never arrived: any method goes to the next peer.
		{"POST", false, errRefused, true},
		{"PATCH", false, errDialSlow, true},
		{"DELETE", false, errRefusedID, true},
		{"POST", false, errEgress, true},
		{"PUT", false, errUntrusted, true},
		// May have arrived: only what changes nothing is sent again.
		{"POST", false, errDeadline, false},
		{"POST", false, errMidway, false},
		{"GET", false, errMidway, true},
		{"HEAD", false, errLost, true},
		// A body that reached a peer is never sent twice, whatever the error.
		{"POST", true, errRefused, false},
		{"GET", true, errMidway, false},
	} {
		if got := retryable(tc.method, tc.bodySent, tc.err); got != tc.want {
			t.Errorf("retryable(%s, bodySent=%t, %v) = %t, want %t", tc.method, tc.bodySent, tc.err, got, tc.want)
		}
	}
}
