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

package peerclient_test

import (
	"context"
	"net"
	"net/http"
	"sync"
	"testing"

	"github.com/mvp-apiserver/kube-apiserver/pkg/controlplane/peerproxy/peerclient"
	"github.com/mvp-apiserver/kube-apiserver/pkg/controlplane/peerproxy/peerclient/peerclienttest"
)

const testEgressProxy = "HTTPConnect proxy at unix socket /run/egress.sock"

// recordingDialer dials directly and records every address asked for: a
// stand-in for the egress selector's dialer that shows who used it.
type recordingDialer struct {
	mu    sync.Mutex
	addrs []string
}

func (d *recordingDialer) dial(ctx context.Context, network, addr string) (net.Conn, error) {
	d.mu.Lock()
	d.addrs = append(d.addrs, addr)
	d.mu.Unlock()
	var nd net.Dialer
	return nd.DialContext(ctx, network, addr)
}

func (d *recordingDialer) dialled() []string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return append([]string(nil), d.addrs...)
}

// get sends GET path to the peer at addr over rt.
func get(t *testing.T, rt http.RoundTripper, addr, path string) (*http.Response, error) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, "https://"+addr+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := rt.RoundTrip(req)
	if err == nil {
		t.Cleanup(func() { resp.Body.Close() })
	}
	return resp, err
}

// Every connection to a peer, for a proxied request or a discovery fetch,
// is made by the configured dialer; discovery has connections of its own.
func TestEgressDialerCarriesRequestsAndDiscovery(t *testing.T) {
	pki := peerclienttest.NewPKI(t)
	rec := &recordingDialer{}
	cfg := peerclienttest.Config(pki)
	cfg.DialContext, cfg.EgressProxy = rec.dial, testEgressProxy
	tr, err := peerclient.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	b := peerclienttest.StartPeer(t, pki, "b", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusOK) }))

	req, _ := http.NewRequest(http.MethodGet, "https://"+b+"/apis/batch/v1/namespaces/default/jobs/x", nil)
	resp, err := tr.For(req).RoundTrip(req)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("request: %v %v, want 200", resp, err)
	}
	resp.Body.Close()
	if got := rec.dialled(); len(got) != 1 || got[0] != b {
		t.Fatalf("after a request the dialer was asked for %v, want [%s]", got, b)
	}
	if _, err := get(t, tr.ForDiscovery(), b, "/apis"); err != nil {
		t.Fatal(err)
	}
	if got := rec.dialled(); len(got) != 2 || got[1] != b {
		t.Fatalf("after a discovery fetch the dialer was asked for %v, want a second dial of %s", got, b)
	}
}

// A protocol upgrade goes out over HTTP/1.1, everything else over HTTP/2.
func TestForPicksTheProtocol(t *testing.T) {
	pki := peerclienttest.NewPKI(t)
	tr, err := peerclient.New(peerclienttest.Config(pki))
	if err != nil {
		t.Fatal(err)
	}
	protos := make(chan string, 2)
	b := peerclienttest.StartPeer(t, pki, "b", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { protos <- r.Proto }))
	plain, _ := http.NewRequest(http.MethodGet, "https://"+b+"/api/v1/pods", nil)
	upgrade, _ := http.NewRequest(http.MethodGet, "https://"+b+"/api/v1/namespaces/x/pods/p/exec", nil)
	upgrade.Header.Set("Connection", "Upgrade")
	upgrade.Header.Set("Upgrade", "websocket")
	for _, tc := range []struct {
		req  *http.Request
		want string
	}{{plain, "HTTP/2.0"}, {upgrade, "HTTP/1.1"}} {
		resp, err := tr.For(tc.req).RoundTrip(tc.req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if got := <-protos; got != tc.want {
			t.Errorf("%s with Upgrade %q went out as %s, want %s", tc.req.URL.Path, tc.req.Header.Get("Upgrade"), got, tc.want)
		}
	}
}
