package peerproxy

import (
	"context"
	"fmt"
	"net"
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

// throughEgress wraps the egress selector's dialer so that its failures
// name the proxy and a dial never takes longer than timeout.
func throughEgress(dial dialFunc, proxy string, timeout time.Duration) dialFunc {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		ctx, cancel := context.WithTimeout(ctx, timeout)
		defer cancel()
		type dialed struct {
			conn net.Conn
			err  error
		}
		ch := make(chan dialed, 1)
		go func() {
			c, err := dial(ctx, network, addr)
			ch <- dialed{c, err}
		}()
		select {
		case d := <-ch:
			if d.err != nil {
				return nil, &egressError{proxy: proxy, addr: addr, err: d.err}
			}
			return d.conn, nil
		case <-ctx.Done():
			// The dial may still finish: its connection is not ours to use.
			go func() {
				if d := <-ch; d.conn != nil {
					d.conn.Close()
				}
			}()
			return nil, &egressError{proxy: proxy, addr: addr, err: fmt.Errorf("no tunnel after %s: %w", timeout, ctx.Err())}
		}
	}
}
