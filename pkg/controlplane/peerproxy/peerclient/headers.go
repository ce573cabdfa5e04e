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
	"fmt"
	"net"
	"net/http"
	"net/textproto"
	"strings"
	"unicode/utf8"

	"golang.org/x/net/http/httpguts"
	"k8s.io/apiserver/pkg/authentication/user"
)

// FrontProxyHeaders are this server's --requestheader-* header names. Peers
// of one control plane share that configuration, so the first of each
// carries a caller's identity to a peer, and every one of them is stripped
// from what a caller sent.
type FrontProxyHeaders struct {
	User, UID, Group, ExtraPrefix []string
}

// HeaderXForwardedFor lists the client and the proxies a request passed.
const HeaderXForwardedFor = "X-Forwarded-For"

// UserHeader is the header a caller's user name travels in.
func (f FrontProxyHeaders) UserHeader() string { return first(f.User) }

func first(names []string) string {
	if len(names) == 0 {
		return ""
	}
	return names[0]
}

// identityHeader reports whether a header a caller sent must never reach a
// peer: a credential, an impersonation request, or a front-proxy identity
// header of any configured or default name.
func (f FrontProxyHeaders) identityHeader(name string) bool {
	switch {
	case strings.EqualFold(name, "Authorization"), strings.EqualFold(name, "Proxy-Authorization"),
		strings.EqualFold(name, "Cookie"), hasPrefixFold(name, "Impersonate-"), hasPrefixFold(name, "X-Remote-"):
		return true
	}
	for _, list := range [][]string{f.User, f.UID, f.Group} {
		for _, n := range list {
			if strings.EqualFold(name, n) {
				return true
			}
		}
	}
	for _, p := range f.ExtraPrefix {
		if p != "" && hasPrefixFold(name, p) {
			return true
		}
	}
	return false
}

func hasPrefixFold(s, prefix string) bool {
	return len(s) >= len(prefix) && strings.EqualFold(s[:len(prefix)], prefix)
}

// SetForwardHeaders strips every credential and identity header the caller
// sent, adds the authenticated user as front-proxy headers, appends the
// caller's address to X-Forwarded-For, and marks the request as rerouted.
// prior is the X-Forwarded-For the caller sent (a front load balancer's).
func (f FrontProxyHeaders) SetForwardHeaders(h http.Header, u user.Info, prior []string, remoteAddr string) {
	for k := range h {
		if f.identityHeader(k) {
			delete(h, k)
		}
	}
	if u != nil {
		h.Set(first(f.User), u.GetName())
		if uid := u.GetUID(); uid != "" && first(f.UID) != "" {
			h.Set(first(f.UID), uid)
		}
		for _, g := range u.GetGroups() {
			h.Add(first(f.Group), g)
		}
		for k, vs := range u.GetExtra() {
			name := first(f.ExtraPrefix) + escapeExtraKey(k)
			for _, v := range vs {
				h.Add(name, v)
			}
		}
	}
	// As a stock kube-apiserver reads it for audit: the client first, then
	// each proxy; this server's own address is the peer's remote address.
	if ip, _, err := net.SplitHostPort(remoteAddr); err == nil {
		if len(prior) > 0 {
			ip = strings.Join(prior, ", ") + ", " + ip
		}
		h.Set(HeaderXForwardedFor, ip)
	} else if len(prior) > 0 {
		h.Set(HeaderXForwardedFor, strings.Join(prior, ", "))
	}
	h.Set(HeaderRerouted, "true")
	h.Set(HeaderPeerProxied, "true")
}

// escapeExtraKey percent-encodes every byte of an extra's key that may not
// stand in a header name, and '%' itself, as client-go's
// transport.SetAuthProxyHeaders does; the request-header authenticator
// decodes it with url.PathUnescape.
func escapeExtraKey(key string) string {
	clean := true
	for i := 0; i < len(key) && clean; i++ {
		clean = !escapeByte(key[i])
	}
	if clean {
		return key
	}
	const hex = "0123456789ABCDEF"
	var b strings.Builder
	b.Grow(len(key) + 8)
	for i := 0; i < len(key); i++ {
		c := key[i]
		if escapeByte(c) {
			b.WriteByte('%')
			b.WriteByte(hex[c>>4])
			b.WriteByte(hex[c&0xf])
			continue
		}
		b.WriteByte(c)
	}
	return b.String()
}

func escapeByte(c byte) bool {
	return c == '%' || c >= utf8.RuneSelf || !httpguts.IsTokenRune(rune(c))
}

// InvalidHeader names the first header of h that cannot be sent, or "".
// Such a request is refused before any peer is tried: the fault is the
// request's (say, an extra value holding a line break), never a peer's.
func InvalidHeader(h http.Header) string {
	for k, vs := range h {
		if !httpguts.ValidHeaderFieldName(k) {
			return fmt.Sprintf("header name %q", k)
		}
		for _, v := range vs {
			if !httpguts.ValidHeaderFieldValue(v) {
				return fmt.Sprintf("a value of header %s", k)
			}
		}
	}
	return ""
}

// Headers that mark a request as already forwarded by a peer: it is always
// served locally and never proxied again.
const (
	HeaderRerouted    = "X-Kubernetes-APIServer-Rerouted"
	HeaderPeerProxied = "X-Kubernetes-Peer-Proxied"
)

// rerouteKeys are the reroute markers as http.Header stores them. Indexing
// the map with them directly spares Header.Get its canonicalisation, which
// allocates for a name not already canonical: this runs on every request.
var rerouteKeys = [...]string{textproto.CanonicalMIMEHeaderKey(HeaderRerouted), textproto.CanonicalMIMEHeaderKey(HeaderPeerProxied)}

// Rerouted reports whether h marks a request a peer already forwarded.
func Rerouted(h http.Header) bool {
	for _, k := range rerouteKeys {
		if v := h[k]; len(v) > 0 && strings.EqualFold(v[0], "true") {
			return true
		}
	}
	return false
}
