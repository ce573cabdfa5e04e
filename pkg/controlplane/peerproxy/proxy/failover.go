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
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync/atomic"
	"time"

	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/mvp-apiserver/kube-apiserver/pkg/controlplane/peerproxy/peerclient"
	"github.com/mvp-apiserver/kube-apiserver/pkg/controlplane/peerproxy/peers"
)

// attemptKey carries the route's peers and the attempt record through the
// reverse proxy to the failover round-tripper.
type attemptKey struct{}

// attempt records what happened to one proxied request.
type attempt struct {
	gvr   schema.GroupVersionResource
	peers []*peers.Peer
	// tried lists the peer IDs tried, in order; served is the one that
	// answered; reasons says, per peer that failed, why, naming no address.
	tried   []string
	served  string
	reasons []string
	// lastErr is the last transport failure.
	lastErr error
	// endedByShutdown: this server began to stop and ended the request
	// (a watch, watchEnder).
	endedByShutdown atomic.Bool
}

// failoverBudget is how long after its first try a request may still start
// a try at another peer. A try at an unreachable peer costs up to the dial
// timeout or the HTTP/2 health ping (peerclient), so a request that finds
// every peer cut off is answered within the budget and one such try,
// however many peers there are. A try already started is never cut short:
// a peer that answers slowly (a large LIST) is not a failure.
const failoverBudget = 5 * time.Second

// failover sends a request to the route's peers in turn: healthy ones
// first, starting at a random one so load spreads. It moves on while the
// failure's Retryable says so, tries at most one peer in backoff (a
// random one, so a peer that came back is found again by the requests
// that follow) and starts none once failoverBudget is spent. Only a peer's own faults
// put it in backoff: not the caller going away, not the request's
// deadline, not a request that cannot be sent at all.
type failover struct {
	t      *peerclient.Transports
	health *Health
}

func (f *failover) RoundTrip(req *http.Request) (*http.Response, error) {
	a, _ := req.Context().Value(attemptKey{}).(*attempt)
	if a == nil {
		return nil, errors.New("peer proxy: request without a route")
	}
	if bad := peerclient.InvalidHeader(req.Header); bad != "" {
		a.lastErr = &peerclient.UnsendableError{What: bad}
		return nil, a.lastErr
	}
	var body *countingBody
	if req.Body != nil && req.Body != http.NoBody {
		body = &countingBody{r: req.Body}
		req.Body = body
	}
	ordered, healthy := f.health.order(a.peers)
	start := f.health.clock.Now()
	for i, p := range ordered {
		if err := req.Context().Err(); err != nil {
			return nil, err
		}
		if left := len(ordered) - i; i > 0 && f.health.clock.Since(start) >= failoverBudget {
			a.reasons = append(a.reasons, fmt.Sprintf("%d more not tried: %s of failover spent", left, failoverBudget))
			break
		} else if i > healthy {
			a.reasons = append(a.reasons, fmt.Sprintf("%d more in backoff not tried", left))
			break
		}
		a.tried = append(a.tried, p.ID)
		resp, err := f.send(req, p)
		if err == nil {
			f.health.succeeded(p.ID)
			a.served = p.ID
			return resp, nil
		}
		a.lastErr = fmt.Errorf("peer %s at %s: %w", p.ID, p.Address, err)
		failure := peerclient.Classify(err)
		a.reasons = append(a.reasons, p.ID+": "+failure.Cause)
		if req.Context().Err() != nil {
			return nil, a.lastErr // the caller left, or its deadline passed
		}
		f.health.failed(p.ID, err)
		if !failure.Retryable(req.Method, body != nil && body.n.Load() > 0) {
			return nil, a.lastErr
		}
	}
	if a.lastErr == nil {
		a.lastErr = errors.New("no peer to try")
	}
	return nil, a.lastErr
}

// send is one attempt at peer p.
func (f *failover) send(req *http.Request, p *peers.Peer) (*http.Response, error) {
	rt := f.t.For(req)
	// A shallow copy with its own URL: the reverse proxy's outgoing
	// request is already private to this call, headers included.
	out := req.WithContext(req.Context())
	u := *req.URL
	u.Host = p.Address
	out.URL, out.Host = &u, p.Address
	// A peer that did not take this server's client certificate answers
	// as an error here (peerclient's identity check), so the next is tried.
	return rt.RoundTrip(out)
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
