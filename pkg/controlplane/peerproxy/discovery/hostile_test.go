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

package discovery

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	apidiscoveryv2 "k8s.io/api/apidiscovery/v2"

	"github.com/mvp-apiserver/kube-apiserver/pkg/controlplane/peerproxy/peerclient"
	"github.com/mvp-apiserver/kube-apiserver/pkg/controlplane/peerproxy/peerclient/peerclienttest"
)

const aggregatedType = "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList"

// answering is a peer whose /apis answer is body (as aggregated
// discovery), read as a stream.
func answering(body func() io.Reader) getFunc {
	return func(req *http.Request) (*http.Response, error) {
		h := http.Header{"Content-Type": {aggregatedType}}
		return &http.Response{StatusCode: http.StatusOK, Header: h, Body: io.NopCloser(body())}, nil
	}
}

// filler reads as n bytes of 'x', counting what was read of it.
type filler struct{ n, read int64 }

func (f *filler) Read(p []byte) (int, error) {
	if f.read >= f.n {
		return 0, io.EOF
	}
	k := min(int64(len(p)), f.n-f.read)
	for i := range p[:k] {
		p[i] = 'x'
	}
	f.read += k
	return int(k), nil
}

// A peer that answers with what is not discovery, or with far more than
// any server's discovery, gets a bad-response error naming what was wrong;
// of a 50 MB document no more than maxDocumentBytes (and one byte) is read.
func TestReadDocsRefusesGarbageAndOversizedDocuments(t *testing.T) {
	big := &filler{n: 50 << 20}
	for name, tc := range map[string]struct {
		body func() io.Reader
		want string
	}{
		"garbage":          {func() io.Reader { return strings.NewReader("\x00\xff{not json") }, "decoding /api"},
		"the wrong shape":  {func() io.Reader { return strings.NewReader(`{"items":"everything"}`) }, "decoding /api"},
		"deeply nested":    {func() io.Reader { return strings.NewReader(strings.Repeat("[", 100000)) }, "decoding /api"},
		"a 50 MB document": {func() io.Reader { return io.MultiReader(strings.NewReader(`{"items":[{"metadata":{"name":"`), big) }, "larger than 16 MiB"},
	} {
		t.Run(name, func(t *testing.T) {
			_, _, err := readDocs(context.Background(), answering(tc.body), nil, nil, nil)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want one saying %q", err, tc.want)
			}
			if k := peerclient.Classify(err).Kind; k != peerclient.KindBadResponse {
				t.Errorf("classified %q, want %q", k, peerclient.KindBadResponse)
			}
		})
	}
	if big.read > maxDocumentBytes+1 {
		t.Errorf("read %d bytes of the 50 MB document, want at most %d", big.read, maxDocumentBytes+1)
	}
}

// A peer that sends its document a byte at a time (slowloris) holds a
// fetch no longer than the fetch's deadline, over a real connection.
func TestReadDocsGivesUpOnASlowPeer(t *testing.T) {
	pki := peerclienttest.NewPKI(t)
	tr, err := peerclient.New(peerclienttest.Config(pki))
	if err != nil {
		t.Fatal(err)
	}
	addr := peerclienttest.StartPeer(t, pki, "slow", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", aggregatedType)
		for {
			if _, err := w.Write([]byte(" ")); err != nil {
				return
			}
			w.(http.Flusher).Flush()
			select {
			case <-r.Context().Done():
				return
			case <-time.After(20 * time.Millisecond):
			}
		}
	}))
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	client := &http.Client{Transport: tr.ForDiscovery()}
	done := make(chan error, 1)
	go func() {
		_, _, err := readDocs(ctx, fromPeer(client, peerclienttest.KubeadmHeaders.UserHeader(), addr), nil, nil, nil)
		done <- err
	}()
	select {
	case err := <-done:
		if k := peerclient.Classify(err).Kind; err == nil || k != peerclient.KindTimeout {
			t.Errorf("error %v classified %q, want %q", err, k, peerclient.KindTimeout)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("a slow peer held the fetch past its deadline")
	}
}

// FuzzMergeOfAPeersDocument: whatever a peer answers for /apis, reading it
// and merging it with this server's own document never panics, and never
// loses a group/version this server serves.
func FuzzMergeOfAPeersDocument(f *testing.F) {
	valid, _ := json.Marshal(apidiscoveryv2.APIGroupDiscoveryList{Items: doc("batch/v1:jobs", "apps/v1:deployments")})
	for _, seed := range []string{string(valid), "", "null", `{"items":null}`, `{"items":[{}]}`,
		`{"items":[{"metadata":{"name":"apps"},"versions":[{"version":""},{"version":"v1","resources":[{}]}]}]}`,
		`{"items":[{"metadata":{"name":""},"versions":[{"version":"v1","freshness":"Bogus"}]}]}`, "\x00\xff"} {
		f.Add(seed)
	}
	local := doc("/v1:pods", "apps/v1:deployments,replicasets", "batch/v1!:jobs")
	f.Fuzz(func(t *testing.T, body string) {
		docs, _, err := readDocs(context.Background(), answering(func() io.Reader { return strings.NewReader(body) }), nil, nil, nil)
		if err != nil {
			return
		}
		merged := Merge([]Source{
			{Server: "a", Local: true, Fresh: true, Groups: local},
			{Server: "b", Fresh: true, Groups: docs.apis.groups},
		}, MergeRules{})
		have := map[string]bool{}
		for _, s := range summary(merged) {
			gv, _, _ := strings.Cut(s, ":")
			have[strings.TrimSuffix(gv, "!")] = true
		}
		for _, s := range summary(local) {
			gv, _, _ := strings.Cut(s, ":")
			if gv = strings.TrimSuffix(gv, "!"); !have[gv] {
				t.Fatalf("merging %q lost this server's %s: %v", body, gv, summary(merged))
			}
		}
		_ = APIGroupList(merged)
	})
}

// A peer that does not take this server's proxy client certificate (it
// answers discovery's user as system:anonymous) is reported as that, with
// the certificate's name, not as a bad response.
func TestReadDocsNamesARefusedClientCertificate(t *testing.T) {
	pki := peerclienttest.NewPKI(t)
	tr, err := peerclient.New(peerclienttest.Config(pki))
	if err != nil {
		t.Fatal(err)
	}
	addr := peerclienttest.StartPeer(t, pki, "rotated", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusForbidden)
		_, _ = io.WriteString(w, `{"kind":"Status","message":"forbidden: User \"system:anonymous\" cannot get path \"/api\""}`)
	}))
	client := &http.Client{Transport: tr.ForDiscovery()}
	_, _, err = readDocs(context.Background(), fromPeer(client, peerclienttest.KubeadmHeaders.UserHeader(), addr), nil, nil, nil)
	if f := peerclient.Classify(err); f.Kind != peerclient.KindClientCertRefused || !strings.Contains(f.Cause, "CN=front-proxy-client") {
		t.Errorf("error %v classified %+v, want %q naming the certificate", err, f, peerclient.KindClientCertRefused)
	}
}
