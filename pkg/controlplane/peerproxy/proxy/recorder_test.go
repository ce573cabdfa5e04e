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
	"bufio"
	"net"
	"net/http"
	"net/http/httptest"
	"testing"
)

// hijackable is a response writer whose connection can be taken over.
type hijackable struct {
	*httptest.ResponseRecorder
	hijacked bool
}

func (h *hijackable) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	h.hijacked = true
	return nil, nil, nil
}

// The code counted for a proxied request is its final one: not the 103
// the peer sent first, and 101 for an upgrade, which is written on the
// hijacked connection rather than through WriteHeader.
func TestCodeRecorderCountsTheFinalCode(t *testing.T) {
	rec := &codeRecorder{ResponseWriter: httptest.NewRecorder()}
	rec.WriteHeader(http.StatusEarlyHints)
	rec.WriteHeader(http.StatusNotFound)
	if rec.code != http.StatusNotFound {
		t.Errorf("after a 103 and a 404, counted %d", rec.code)
	}

	h := &hijackable{ResponseRecorder: httptest.NewRecorder()}
	up := &codeRecorder{ResponseWriter: h}
	if _, _, err := http.NewResponseController(up).Hijack(); err != nil || !h.hijacked {
		t.Fatalf("hijack through the recorder: %v, reached the writer %t", err, h.hijacked)
	}
	if up.code != http.StatusSwitchingProtocols {
		t.Errorf("an upgrade counted %d, want 101", up.code)
	}
}
