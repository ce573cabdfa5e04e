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
	"errors"
	"net"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

const testEgressProxy = "HTTPConnect proxy at unix socket /run/egress.sock"

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
	if !errors.As(err, &ee) || !errors.Is(err, context.DeadlineExceeded) || !Classify(err).Undelivered {
		t.Fatalf("got %v, want an unreachable egress error from the deadline", err)
	}
	if kind := Classify(err).Kind; kind != KindEgressProxy {
		t.Errorf("classified as %q, want %q (the proxy failed, not the peer)", kind, KindEgressProxy)
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
