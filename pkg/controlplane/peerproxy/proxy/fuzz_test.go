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
	"net/http"
	"strings"
	"testing"

	"k8s.io/apiserver/pkg/authentication/user"
	"k8s.io/apiserver/pkg/endpoints/request"

	"github.com/mvp-apiserver/kube-apiserver/pkg/controlplane/peerproxy/peerclient"
	"github.com/mvp-apiserver/kube-apiserver/pkg/controlplane/peerproxy/peerclient/peerclienttest"
)

// FuzzDecide checks the router's invariants on arbitrary requests: a
// rerouted or non-resource request is always local, a proxy decision
// always has live peers other than self, and 503 only for known resources.
func FuzzDecide(f *testing.F) {
	f.Add(true, "batch", "v1", "jobs", "", false)
	f.Add(true, "", "v1", "pods", "log", false)
	f.Add(true, "flowcontrol.apiserver.k8s.io", "v1beta3", "flowschemas", "", false)
	f.Add(true, "batch", "v1", "jobs", "status", true)
	f.Add(false, "", "", "", "", false)
	snap := routerSnapshot(true)
	f.Fuzz(func(t *testing.T, resource bool, group, version, res, sub string, rerouted bool) {
		info := &request.RequestInfo{IsResourceRequest: resource, APIGroup: group, APIVersion: version, Resource: res, Subresource: sub}
		r := Decide(info, rerouted, snap)
		if (rerouted || !resource) && r.Decision != Local {
			t.Fatalf("rerouted=%v resource=%v decided %s", rerouted, resource, r.Decision)
		}
		switch r.Decision {
		case Proxy:
			if len(r.Peers) == 0 {
				t.Fatal("proxy without peers")
			}
			for _, p := range r.Peers {
				if p.ID == snap.Self || !p.Live || p.Address == "" {
					t.Fatalf("routed to an unusable peer %+v", p)
				}
			}
			if served, _ := snap.ServesLocally(r.GVR); served {
				t.Fatal("proxied a locally served resource")
			}
		case Unavailable:
			if !snap.Known(r.GVR) || len(r.Peers) != 0 {
				t.Fatalf("503 for %v: known=%v peers=%d", r.GVR, snap.Known(r.GVR), len(r.Peers))
			}
		}
	})
}

// FuzzForwardHeaders checks that no client-sent credential or identity
// header survives, whatever its spelling, and that the forwarded identity
// is exactly the authenticated user's.
func FuzzForwardHeaders(f *testing.F) {
	f.Add("X-Remote-User", "admin", "alice", "devs", "scopes", "a b")
	f.Add("x-remote-group", "system:masters", "bob", "", "", "")
	f.Add("Authorization", "Bearer secret", "carol", "g", "k/é", "v")
	f.Add("Impersonate-Extra-Scopes", "x", "dave", "g", "", "")
	f.Add("Cookie", "session=1", "erin", "g", "", "")
	f.Fuzz(func(t *testing.T, name, value, userName, group, extraKey, extraValue string) {
		h := http.Header{}
		h.Add(name, value)
		h.Add("Accept", "application/json")
		u := &user.DefaultInfo{Name: userName, Groups: []string{group}}
		if extraKey != "" {
			u.Extra = map[string][]string{extraKey: {extraValue}}
		}
		peerclienttest.KubeadmHeaders.SetForwardHeaders(h, u, nil, "127.0.0.1:1")
		for k, vs := range h {
			lk := strings.ToLower(k)
			if lk == "authorization" || lk == "cookie" || lk == "proxy-authorization" || strings.HasPrefix(lk, "impersonate-") {
				t.Fatalf("credential header %s survived: %v", k, vs)
			}
		}
		if got := h.Values("X-Remote-User"); len(got) != 1 || got[0] != userName {
			t.Fatalf("X-Remote-User = %v, want [%q]", got, userName)
		}
		if got := h.Values("X-Remote-Group"); len(got) != 1 || got[0] != group {
			t.Fatalf("X-Remote-Group = %v, want [%q]", got, group)
		}
		for k := range h {
			if strings.HasPrefix(strings.ToLower(k), "x-remote-extra-") && extraKey == "" {
				t.Fatalf("extra header %s without any extra", k)
			}
		}
		if h.Get(peerclient.HeaderRerouted) != "true" || h.Get(peerclient.HeaderPeerProxied) != "true" {
			t.Fatal("reroute markers missing")
		}
		if h.Get("Accept") != "application/json" {
			t.Fatal("an unrelated header was dropped")
		}
	})
}
