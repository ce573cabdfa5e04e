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
	errRefusedID  = &IdentityRefusedError{Code: 403, ClientCert: `subject "CN=front-proxy-client"`}
	errEgress     = &egressError{proxy: "unix:/run/konnectivity", addr: "127.0.0.2:6443", err: syscall.ECONNREFUSED}
	errUntrusted  = fmt.Errorf("tls: %w", x509.UnknownAuthorityError{})
	errBadDoc     = BadResponsef("/apis answered %s, not aggregated discovery v2", "text/html")
	errDeadline   = fmt.Errorf("reading the answer: %w", context.DeadlineExceeded)
	errLost       = errors.New("http2: client connection lost")
	errUnsendable = &UnsendableError{What: `the header name "X-Remote-Extra-a:b"`}
	errMidway     = fmt.Errorf("reading the answer: %w", io.ErrUnexpectedEOF)
)

func TestClassify(t *testing.T) {
	for _, tc := range []struct {
		err         error
		kind        string
		undelivered bool
	}{
		{errRefused, KindUnreachable, true},
		{errDialSlow, KindTimeout, true},
		{errRefusedID, KindClientCertRefused, true},
		{errEgress, KindEgressProxy, true},
		// The egress proxy failed, even when its cause is a timeout.
		{&egressError{proxy: "p", addr: "a", err: context.DeadlineExceeded}, KindEgressProxy, true},
		{errUntrusted, KindUntrustedCert, true},
		{errBadDoc, KindBadResponse, false},
		{errDeadline, KindTimeout, false},
		{errLost, KindTimeout, false},
		{errUnsendable, KindRequestFailed, false},
		{errMidway, KindRequestFailed, false},
	} {
		f := Classify(tc.err)
		if f.Kind != tc.kind || f.Undelivered != tc.undelivered || f.Cause == "" {
			t.Errorf("Classify(%v) = %+v, want kind %s, undelivered %t, and a cause", tc.err, f, tc.kind, tc.undelivered)
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
		if got := Classify(tc.err).Retryable(tc.method, tc.bodySent); got != tc.want {
			t.Errorf("Classify(err).Retryable(%s, bodySent=%t, %v) = %t, want %t", tc.method, tc.bodySent, tc.err, got, tc.want)
		}
	}
}
