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
	"net"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"

	"golang.org/x/net/http/httpguts"
	utilnet "k8s.io/apimachinery/pkg/util/net"
	"k8s.io/apiserver/pkg/authentication/request/headerrequest"
	"k8s.io/apiserver/pkg/authentication/user"
	"k8s.io/client-go/transport"
)

// kubeadmHeaders are the names kubeadm configures.
var kubeadmHeaders = FrontProxyHeaders{
	User: []string{"X-Remote-User"}, UID: []string{"X-Remote-Uid"},
	Group: []string{"X-Remote-Group"}, ExtraPrefix: []string{"X-Remote-Extra-"},
}

// awkwardUsers are identities an authenticator can produce whose extras
// are hard to carry in header names.
var awkwardUsers = []struct {
	name string
	user *user.DefaultInfo
}{
	{"plain", &user.DefaultInfo{Name: "alice", UID: "42", Groups: []string{"devs", "system:authenticated"}}},
	{"oidc claim with slash and colon", &user.DefaultInfo{Name: "oidc:bob", Groups: []string{"system:authenticated"},
		Extra: map[string][]string{"example.org/tenant:id": {"t-1", "t-2"}}}},
	{"service account token extras", &user.DefaultInfo{Name: "system:serviceaccount:kube-system:namespace-controller", UID: "u-1",
		Groups: []string{"system:serviceaccounts", "system:serviceaccounts:kube-system", "system:authenticated"},
		Extra:  map[string][]string{"authentication.kubernetes.io/credential-id": {"JTI=abc"}, "authentication.kubernetes.io/node-name": {"n1"}}}},
	{"spaces and non-ASCII", &user.DefaultInfo{Name: "zoë", Groups: []string{"équipe a"},
		Extra: map[string][]string{"example.org/höhe zone": {"süd ost", "北"}}}},
	{"percent and escapes that look decoded", &user.DefaultInfo{Name: "carol",
		Extra: map[string][]string{"a%2fb": {"x"}, "100%": {"y"}, "%zz": {"z"}}}},
	{"separators", &user.DefaultInfo{Name: "dave", Extra: map[string][]string{`k"(),;<=>?@[\]{}` + "\t": {"v"}}}},
	{"no groups, empty extra value", &user.DefaultInfo{Name: "erin", Extra: map[string][]string{"scopes": {""}}}},
}

// A stock kube-apiserver's request-header authenticator reads back every
// awkward user exactly as it was sent.
func TestForwardHeadersRoundTripThroughRequestHeaderAuthenticator(t *testing.T) {
	auth, err := headerrequest.New(kubeadmHeaders.User, kubeadmHeaders.UID, kubeadmHeaders.Group, kubeadmHeaders.ExtraPrefix)
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range awkwardUsers {
		t.Run(tt.name, func(t *testing.T) {
			req := httptest.NewRequest(http.MethodGet, "/apis/batch/v1/jobs", nil)
			kubeadmHeaders.SetForwardHeaders(req.Header, tt.user, nil, "127.0.0.50:4000")
			if bad := InvalidHeader(req.Header); bad != "" {
				t.Fatalf("would not be sent: %s", bad)
			}
			resp, ok, err := auth.AuthenticateRequest(req)
			if err != nil || !ok {
				t.Fatalf("not authenticated: %v", err)
			}
			got := resp.User
			want := tt.user
			if got.GetName() != want.Name || got.GetUID() != want.UID || !reflect.DeepEqual(nonNil(got.GetGroups()), nonNil(want.Groups)) {
				t.Errorf("user = %q %q %q, want %q %q %q", got.GetName(), got.GetUID(), got.GetGroups(), want.Name, want.UID, want.Groups)
			}
			if !reflect.DeepEqual(got.GetExtra(), extraOrNil(want.Extra)) {
				t.Errorf("extra = %q, want %q", got.GetExtra(), want.Extra)
			}
		})
	}
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

func extraOrNil(e map[string][]string) map[string][]string {
	if len(e) == 0 {
		return map[string][]string{}
	}
	return e
}

// Extra keys are escaped exactly as client-go's front-proxy round-tripper
// escapes them.
func TestEscapeExtraKeyMatchesClientGo(t *testing.T) {
	for _, tt := range awkwardUsers {
		for key := range tt.user.Extra {
			req := httptest.NewRequest(http.MethodGet, "/", nil)
			transport.SetAuthProxyHeaders(req, "u", "", nil, map[string][]string{key: {"v"}})
			var want string
			for k := range req.Header {
				if strings.HasPrefix(k, "X-Remote-Extra-") {
					want = strings.TrimPrefix(k, "X-Remote-Extra-")
				}
			}
			if got := http.CanonicalHeaderKey("X-Remote-Extra-" + escapeExtraKey(key)); got != "X-Remote-Extra-"+want {
				t.Errorf("key %q: %q, client-go %q", key, got, "X-Remote-Extra-"+want)
			}
		}
	}
}

// The header names come from this server's --requestheader-* flags, and
// every configured name is stripped from what the caller sent.
func TestForwardHeadersUseConfiguredNames(t *testing.T) {
	names := FrontProxyHeaders{
		User: []string{"X-Auth-User", "X-Remote-User"}, UID: []string{"X-Auth-Uid"},
		Group: []string{"X-Auth-Group", "X-Other-Group"}, ExtraPrefix: []string{"X-Auth-Extra-", "X-Other-Extra-"},
	}
	h := http.Header{}
	for _, forged := range []string{"X-Auth-User", "X-Remote-User", "X-Auth-Uid", "X-Auth-Group", "X-Other-Group",
		"X-Auth-Extra-Scopes", "X-Other-Extra-Scopes", "Impersonate-Group", "Authorization"} {
		h.Set(forged, "forged")
	}
	h.Set("Accept", "application/json")
	names.SetForwardHeaders(h, awkwardUsers[1].user, nil, "10.0.0.9:555")
	want := http.Header{
		"X-Auth-User":                            {"oidc:bob"},
		"X-Auth-Group":                           {"system:authenticated"},
		"X-Auth-Extra-Example.org%2ftenant%3aid": {"t-1", "t-2"},
		"Accept":                                 {"application/json"},
		"X-Forwarded-For":                        {"10.0.0.9"},
		HeaderRerouted:                           {"true"},
		HeaderPeerProxied:                        {"true"},
	}
	// Header keys are case-insensitive; compare canonically.
	got := http.Header{}
	for k, v := range h {
		got[http.CanonicalHeaderKey(k)] = v
	}
	canonWant := http.Header{}
	for k, v := range want {
		canonWant[http.CanonicalHeaderKey(k)] = v
	}
	if !reflect.DeepEqual(got, canonWant) {
		t.Errorf("headers\n got %v\nwant %v", got, canonWant)
	}
	// No UID header configured: the UID is not sent.
	h = http.Header{}
	noUID := names
	noUID.UID = nil
	noUID.SetForwardHeaders(h, awkwardUsers[0].user, nil, "10.0.0.9:555")
	for k := range h {
		if strings.Contains(strings.ToLower(k), "uid") {
			t.Errorf("UID sent in %s without a UID header configured", k)
		}
	}
}

// A stock kube-apiserver's audit lists the client first, then each proxy.
func TestForwardHeadersAppendTheClientAddress(t *testing.T) {
	tests := []struct {
		name   string
		prior  []string
		remote string
		want   []string
	}{
		{"direct client", nil, "127.0.0.50:41000", []string{"127.0.0.50", "127.0.0.51"}},
		{"behind a load balancer", []string{"203.0.113.7"}, "10.0.0.2:41000", []string{"203.0.113.7", "10.0.0.2", "127.0.0.51"}},
		{"several lines from the balancers", []string{"203.0.113.7, 198.51.100.1", "10.1.1.1"}, "10.0.0.2:1", []string{"203.0.113.7", "198.51.100.1", "10.1.1.1", "10.0.0.2", "127.0.0.51"}},
		{"ipv6 client", nil, "[fd00::50]:41000", []string{"fd00::50", "127.0.0.51"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := http.Header{}
			kubeadmHeaders.SetForwardHeaders(h, awkwardUsers[0].user, tt.prior, tt.remote)
			// What the peer's audit computes: A (127.0.0.51) is its remote address.
			req := httptest.NewRequest(http.MethodGet, "/", nil)
			req.Header = h
			req.RemoteAddr = "127.0.0.51:6443"
			var got []string
			for _, ip := range utilnet.SourceIPs(req) {
				got = append(got, ip.String())
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("sourceIPs = %v, want %v", got, tt.want)
			}
		})
	}
}

// An extra value no HTTP request can carry is refused before any peer is
// tried, naming the header.
func TestInvalidHeaderNamesTheUnsendable(t *testing.T) {
	h := http.Header{}
	kubeadmHeaders.SetForwardHeaders(h, &user.DefaultInfo{Name: "x", Extra: map[string][]string{"note": {"line one\r\nline two"}}}, nil, "1.2.3.4:5")
	if got := InvalidHeader(h); !strings.Contains(got, "X-Remote-Extra-Note") {
		t.Fatalf("InvalidHeader = %q", got)
	}
	h = http.Header{}
	kubeadmHeaders.SetForwardHeaders(h, awkwardUsers[3].user, nil, "1.2.3.4:5")
	if got := InvalidHeader(h); got != "" {
		t.Fatalf("a valid identity was refused: %s", got)
	}
}

// FuzzForwardHeaderNames: whatever the user, every header the proxy emits
// has a valid name, and every extra key survives the request-header
// authenticator unchanged.
func FuzzForwardHeaderNames(f *testing.F) {
	for _, tt := range awkwardUsers {
		for k, vs := range tt.user.Extra {
			f.Add(tt.user.Name, k, vs[0])
		}
	}
	auth, err := headerrequest.New(kubeadmHeaders.User, kubeadmHeaders.UID, kubeadmHeaders.Group, kubeadmHeaders.ExtraPrefix)
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, name, key, value string) {
		h := http.Header{}
		kubeadmHeaders.SetForwardHeaders(h, &user.DefaultInfo{Name: name, Extra: map[string][]string{key: {value}}}, nil, net.JoinHostPort("127.0.0.1", "1"))
		for k := range h {
			if !httpguts.ValidHeaderFieldName(k) {
				t.Fatalf("header name %q is not a token (key %q)", k, key)
			}
		}
		if InvalidHeader(h) != "" {
			return // a name or value no request can carry: refused before sending
		}
		req := httptest.NewRequest(http.MethodGet, "/", nil)
		req.Header = h
		resp, ok, err := auth.AuthenticateRequest(req)
		if err != nil || !ok {
			if strings.TrimSpace(name) == "" {
				return // the authenticator takes no blank user name
			}
			t.Fatalf("not authenticated: %v", err)
		}
		// Header names are case-insensitive: ASCII letters of keys arrive
		// lower-cased, as with every front proxy.
		if got := resp.User.GetExtra()[asciiLower(key)]; len(got) != 1 || got[0] != value {
			t.Fatalf("extra %q = %q, want [%q]", key, got, value)
		}
	})
}

func asciiLower(s string) string {
	b := []byte(s)
	for i, c := range b {
		if 'A' <= c && c <= 'Z' {
			b[i] = c + 'a' - 'A'
		}
	}
	return string(b)
}

func TestRerouted(t *testing.T) {
	tests := []struct {
		h    http.Header
		want bool
	}{
		{http.Header{}, false},
		{http.Header{"X-Kubernetes-Apiserver-Rerouted": {"true"}}, true},
		{http.Header{"X-Kubernetes-Apiserver-Rerouted": {"TRUE"}}, true},
		{http.Header{"X-Kubernetes-Peer-Proxied": {"true"}}, true},
		{http.Header{"X-Kubernetes-Apiserver-Rerouted": {"false"}}, false},
		{http.Header{"X-Kubernetes-Peer-Proxied": {"1"}}, false},
	}
	for _, tt := range tests {
		if got := Rerouted(tt.h); got != tt.want {
			t.Errorf("Rerouted(%v) = %v, want %v", tt.h, got, tt.want)
		}
	}
}
