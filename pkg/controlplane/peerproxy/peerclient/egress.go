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
	"fmt"
	"net"
	"sync"
	"time"
)

// egressDialTimeout bounds a dial through the egress proxy: reaching the
// proxy and its answer to CONNECT. Upstream's HTTP CONNECT tunnel stops
// watching the context once the proxy is reached, so a proxy that never
// answers would otherwise hold the request.
const egressDialTimeout = 5 * time.Second

// dialFunc is how a transport dials (net.Dialer.DialContext's shape).
type dialFunc func(ctx context.Context, network, addr string) (net.Conn, error)

// egressError: a peer could not be dialled through the egress proxy, so
// nothing reached the peer. Never followed by a direct dial.
type egressError struct {
	proxy, addr string
	err         error
}

func (e *egressError) Error() string {
	return fmt.Sprintf("dialing %s through the egress proxy (%s): %v", e.addr, e.proxy, e.err)
}

func (e *egressError) Unwrap() error { return e.err }

// maxPendingEgressDials bounds, per peer address, the dials through the
// egress proxy that have not returned, those already given up on included.
// Upstream's CONNECT tunnel cannot be cancelled: a frozen proxy holds each
// dial's goroutine and socket until it answers or dies. Past this many, a
// dial fails at once, so a frozen proxy costs a few sockets, not one per
// request.
const maxPendingEgressDials = 4

// egressDialer wraps the egress selector's dialer so that its failures
// name the proxy, a dial never takes longer than timeout, and no more than
// maxPending dials per address are ever outstanding.
type egressDialer struct {
	next       dialFunc
	proxy      string
	timeout    time.Duration
	maxPending int

	mu      sync.Mutex
	pending map[string]int
}

func newEgressDialer(next dialFunc, proxy string, timeout time.Duration, maxPending int) *egressDialer {
	return &egressDialer{next: next, proxy: proxy, timeout: timeout, maxPending: maxPending, pending: map[string]int{}}
}

// acquire takes one of addr's slots, or reports how many are held.
func (d *egressDialer) acquire(addr string) (int, bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	n := d.pending[addr]
	if n >= d.maxPending {
		return n, false
	}
	d.pending[addr] = n + 1
	return n, true
}

func (d *egressDialer) release(addr string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.pending[addr]--; d.pending[addr] <= 0 {
		delete(d.pending, addr)
	}
}

func (d *egressDialer) dial(ctx context.Context, network, addr string) (net.Conn, error) {
	if n, ok := d.acquire(addr); !ok {
		return nil, &egressError{proxy: d.proxy, addr: addr,
			err: fmt.Errorf("%d earlier dials to it through the proxy are still unanswered; none is started until one returns", n)}
	}
	ctx, cancel := context.WithTimeout(ctx, d.timeout)
	defer cancel()
	type dialed struct {
		conn net.Conn
		err  error
	}
	ch := make(chan dialed, 1)
	go func() {
		defer d.release(addr)
		c, err := d.next(ctx, network, addr)
		ch <- dialed{c, err}
	}()
	select {
	case r := <-ch:
		if r.err != nil {
			return nil, &egressError{proxy: d.proxy, addr: addr, err: r.err}
		}
		return r.conn, nil
	case <-ctx.Done():
		// The dial may still finish: its connection is not ours to use.
		go func() {
			if r := <-ch; r.conn != nil {
				r.conn.Close()
			}
		}()
		return nil, &egressError{proxy: d.proxy, addr: addr, err: fmt.Errorf("no tunnel after %s: %w", d.timeout, ctx.Err())}
	}
}
