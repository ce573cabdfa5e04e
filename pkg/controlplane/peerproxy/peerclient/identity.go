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
	"bytes"
	"io"
	"net/http"

	"k8s.io/apiserver/pkg/authentication/user"
)

// identityChecked is a round-tripper that turns a peer's answer into an
// *IdentityRefusedError when the peer did not take the front-proxy identity
// the request carried: a 401, or a 403 for system:anonymous, to a request
// for someone else. That is what a peer answers when it does not trust
// this server's client certificate (a rotated front-proxy CA, say); the
// request did nothing there. Proxied requests and discovery fetches both
// go through it, so both name the certificate.
type identityChecked struct {
	rt         http.RoundTripper
	userHeader string
	cert       func() string
}

func (c identityChecked) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := c.rt.RoundTrip(req)
	if err != nil || (resp.StatusCode != http.StatusUnauthorized && resp.StatusCode != http.StatusForbidden) {
		return resp, err
	}
	if u := req.Header.Get(c.userHeader); c.userHeader == "" || u == "" || u == user.Anonymous {
		return resp, nil
	}
	if resp.StatusCode == http.StatusForbidden {
		head := make([]byte, 4<<10)
		n, _ := io.ReadFull(resp.Body, head)
		head = head[:n]
		if !bytes.Contains(head, []byte(user.Anonymous)) {
			resp.Body = struct {
				io.Reader
				io.Closer
			}{io.MultiReader(bytes.NewReader(head), resp.Body), resp.Body}
			return resp, nil // the user's own 403
		}
	}
	resp.Body.Close()
	return nil, &IdentityRefusedError{Code: resp.StatusCode, ClientCert: c.cert()}
}
