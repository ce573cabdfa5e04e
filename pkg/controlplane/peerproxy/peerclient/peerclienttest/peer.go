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

// Package peerclienttest starts peers for tests: TLS servers with serving
// certificates of a test PKI that require its front-proxy client
// certificate, as a kube-apiserver does.
package peerclienttest

import (
	"crypto/tls"
	"crypto/x509"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"testing"

	"k8s.io/apiserver/pkg/authentication/user"

	"github.com/mvp-apiserver/kube-apiserver/pkg/controlplane/peerproxy/peerclient"
	"github.com/mvp-apiserver/kube-apiserver/test/e2e/harness"
)

// KubeadmHeaders are the front-proxy header names kubeadm configures.
var KubeadmHeaders = peerclient.FrontProxyHeaders{
	User: []string{"X-Remote-User"}, UID: []string{"X-Remote-Uid"},
	Group: []string{"X-Remote-Group"}, ExtraPrefix: []string{"X-Remote-Extra-"},
}

// Alice is an authenticated caller with a UID, groups and an extra whose
// key needs escaping in a header name.
var Alice = &user.DefaultInfo{Name: "alice", UID: "42", Groups: []string{"devs", "system:authenticated"}, Extra: map[string][]string{"scopes.example/a b": {"x"}}}

// NewPKI makes a test PKI in a temporary directory.
func NewPKI(t testing.TB) *harness.PKI {
	t.Helper()
	pki, err := harness.NewPKI(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return pki
}

// Config reaches peers of pki with kubeadm's header names.
func Config(pki *harness.PKI) peerclient.Config {
	return peerclient.Config{CAFile: pki.CAFile, ClientCertFile: pki.ProxyClientCert, ClientKeyFile: pki.ProxyClientKey, Headers: KubeadmHeaders}
}

// StartPeer starts peer id serving h (HTTP/2 and HTTP/1.1) on loopback
// until the test ends, and returns its address.
func StartPeer(t testing.TB, pki *harness.PKI, id string, h http.Handler) string {
	t.Helper()
	certFile, keyFile, err := pki.IssueServing(id, net.ParseIP("127.0.0.1"))
	if err != nil {
		t.Fatal(err)
	}
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	fp, err := os.ReadFile(pki.FrontProxyCAFile)
	if err != nil {
		t.Fatal(err)
	}
	pool.AppendCertsFromPEM(fp)
	srv := httptest.NewUnstartedServer(h)
	srv.EnableHTTP2 = true
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{cert}, ClientAuth: tls.RequireAndVerifyClientCert, ClientCAs: pool}
	srv.StartTLS()
	t.Cleanup(srv.Close)
	return srv.Listener.Addr().String()
}

// DeadAddress is a loopback address where nothing listens.
func DeadAddress(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}
