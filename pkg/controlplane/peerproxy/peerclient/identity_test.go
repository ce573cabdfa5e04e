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
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// answer is a round-tripper that answers every request with code and body.
func answer(code int, body string) http.RoundTripper {
	return roundTripperFunc(func(*http.Request) (*http.Response, error) {
		return &http.Response{StatusCode: code, Body: io.NopCloser(strings.NewReader(body))}, nil
	})
}

// A 401, or a 403 for system:anonymous, to a request that carried a user
// is the peer refusing this server's client certificate; a user's own 403
// and an anonymous caller's answers are relayed as they are, body intact.
func TestIdentityCheckTellsARefusedCertificateFromAUsersOwn403(t *testing.T) {
	own := `{"message":"jobs.batch is forbidden: User \"alice\" cannot list resource \"jobs\""}`
	anon := `{"message":"forbidden: User \"system:anonymous\" cannot list resource \"jobs\""}`
	for _, tc := range []struct {
		name, user string
		code       int
		body       string
		refused    bool
	}{
		{"401 for alice", "alice", http.StatusUnauthorized, "", true},
		{"403 as anonymous for alice", "alice", http.StatusForbidden, anon, true},
		{"alice's own 403", "alice", http.StatusForbidden, own, false},
		{"an anonymous caller's 403", "system:anonymous", http.StatusForbidden, anon, false},
		{"a request without a user", "", http.StatusUnauthorized, "", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := identityChecked{rt: answer(tc.code, tc.body), userHeader: "X-Remote-User", cert: func() string { return "subject \"CN=front-proxy-client\"" }}
			req := httptest.NewRequest(http.MethodGet, "https://peer/apis/batch/v1/jobs", nil)
			if tc.user != "" {
				req.Header.Set("X-Remote-User", tc.user)
			}
			resp, err := c.RoundTrip(req)
			var refused *IdentityRefusedError
			if got := errors.As(err, &refused); got != tc.refused {
				t.Fatalf("refused %v (error %v), want %v", got, err, tc.refused)
			}
			if tc.refused {
				if !strings.Contains(err.Error(), "CN=front-proxy-client") || refused.Code != tc.code {
					t.Errorf("error %v does not name the certificate and code %d", err, tc.code)
				}
				return
			}
			if body, _ := io.ReadAll(resp.Body); string(body) != tc.body {
				t.Errorf("relayed body %q, want %q", body, tc.body)
			}
		})
	}
}
