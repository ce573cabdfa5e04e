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
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mvp-apiserver/kube-apiserver/pkg/controlplane/peerproxy/peerclient"
	"github.com/mvp-apiserver/kube-apiserver/pkg/controlplane/peerproxy/peerclient/peerclienttest"
	"github.com/mvp-apiserver/kube-apiserver/test/e2e/harness"
)

// Replacing the peer CA bundle and the client certificate on disk takes
// effect without a restart: new connections verify with the new bundle and
// present the new certificate; the old peer is then refused, named.
func TestCredentialsReloadFromDisk(t *testing.T) {
	dir := t.TempDir()
	caFile, certFile, keyFile := filepath.Join(dir, "peer-ca.crt"), filepath.Join(dir, "client.crt"), filepath.Join(dir, "client.key")
	old := peerclienttest.NewPKI(t) // its peers trust only the old PKI
	for dst, src := range map[string]string{caFile: old.CAFile, certFile: old.ProxyClientCert, keyFile: old.ProxyClientKey} {
		if err := harness.ReplaceFile(dst, src); err != nil {
			t.Fatal(err)
		}
	}
	tr, err := peerclient.New(peerclient.Config{CAFile: caFile, ClientCertFile: certFile, ClientKeyFile: keyFile, Headers: peerclienttest.KubeadmHeaders})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	tr.Run(ctx)
	ok := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusOK) })
	oldPeer := peerclienttest.StartPeer(t, old, "old", ok)
	send := func(addr string) error {
		req, _ := http.NewRequest(http.MethodGet, "https://"+addr+"/apis/batch/v1/jobs", nil)
		resp, err := tr.For(req).RoundTrip(req)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				return &statusError{resp.StatusCode}
			}
		}
		return err
	}
	if err := send(oldPeer); err != nil {
		t.Fatalf("before the rotation: %v", err)
	}
	oldName := tr.ClientCertName()

	rotated := peerclienttest.NewPKI(t)
	newPeer := peerclienttest.StartPeer(t, rotated, "new", ok)
	for _, swap := range [][2]string{{caFile, rotated.CAFile}, {certFile, rotated.ProxyClientCert}, {keyFile, rotated.ProxyClientKey}} {
		if err := harness.ReplaceFile(swap[0], swap[1]); err != nil {
			t.Fatal(err)
		}
	}
	deadline := time.Now().Add(70 * time.Second) // the files are also read again every minute
	for {
		err := send(newPeer)
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the new material was never used: %v", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	err = send(oldPeer)
	if err == nil || !strings.Contains(err.Error(), "is not trusted by --peer-ca-file "+caFile) || !strings.Contains(err.Error(), `issuer "CN=mvp-local-ca"`) {
		t.Fatalf("the old peer after the rotation: %v, want it refused naming the file and the certificate", err)
	}
	if f := peerclient.Classify(err); f.Kind != peerclient.KindUntrustedCert || !f.Undelivered {
		t.Errorf("classified as %+v, want an undelivered %s", f, peerclient.KindUntrustedCert)
	}
	if tr.ClientCertName() == oldName {
		t.Errorf("the client certificate is still %s after the rotation", oldName)
	}
}

type statusError struct{ code int }

func (e *statusError) Error() string { return http.StatusText(e.code) }
