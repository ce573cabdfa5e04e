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

package options

import (
	"path/filepath"
	"strings"
	"testing"
)

func egressConfig(selections string) []byte {
	return []byte("apiVersion: apiserver.k8s.io/v1beta1\nkind: EgressSelectorConfiguration\negressSelections:\n" + selections)
}

func TestControlPlaneEgress(t *testing.T) {
	certFile := writeFile(t, "client.crt", testCA(t))
	keyFile := writeFile(t, "client.key", []byte("key"))
	udsControlPlane := `- name: controlplane
  connection:
    proxyProtocol: HTTPConnect
    transport:
      uds:
        udsName: /run/egress/proxy.sock
`
	tlsControlPlane := `- name: controlplane
  connection:
    proxyProtocol: HTTPConnect
    transport:
      tcp:
        url: https://127.0.0.1:8131
        tlsConfig:
          clientCert: ` + certFile + `
          clientKey: ` + keyFile + `
`
	konnectivity := `- name: controlplane
  connection:
    proxyProtocol: GRPC
    transport:
      uds:
        udsName: /etc/kubernetes/konnectivity-server/konnectivity-server.socket
`
	direct := `- name: controlplane
  connection:
    proxyProtocol: Direct
`
	clusterOnly := `- name: cluster
  connection:
    proxyProtocol: HTTPConnect
    transport:
      uds:
        udsName: /run/egress/cluster.sock
`
	plainHTTP := func(name string) string {
		return `- name: ` + name + `
  connection:
    proxyProtocol: HTTPConnect
    transport:
      tcp:
        url: http://127.0.0.1:8888
`
	}

	for _, tc := range []struct {
		name    string
		config  []byte // nil: no file given
		want    string
		wantErr []string
	}{
		{name: "no file", want: ""},
		{name: "HTTPConnect over a unix socket", config: egressConfig(udsControlPlane), want: "HTTPConnect proxy at unix socket /run/egress/proxy.sock"},
		{name: "HTTPConnect over TLS", config: egressConfig(tlsControlPlane), want: "HTTPConnect proxy at https://127.0.0.1:8131"},
		{name: "konnectivity", config: egressConfig(konnectivity), want: "konnectivity (GRPC) proxy at unix socket /etc/kubernetes/konnectivity-server/konnectivity-server.socket"},
		{name: "controlplane direct", config: egressConfig(direct), want: ""},
		{name: "no controlplane selection", config: egressConfig(clusterOnly), want: ""},
		{name: "controlplane over plain http", config: egressConfig(plainHTTP("controlplane")),
			wantErr: []string{"--egress-selector-config-file=", "egressSelections[0]", `"controlplane"`, `connection.transport.tcp.url "http://127.0.0.1:8888"`, "connection.transport.uds"}},
		{name: "plain http on another selection crashes upstream too", config: egressConfig(clusterOnly + plainHTTP("etcd")),
			wantErr: []string{"egressSelections[1]", `"etcd"`, "http://127.0.0.1:8888"}},
		{name: "fails upstream's validation", config: egressConfig("- name: controlplane\n  connection:\n    proxyProtocol: Carrier\n"),
			wantErr: []string{"--egress-selector-config-file=", "Carrier"}},
		{name: "not a configuration", config: []byte("egressSelections: [oops"), wantErr: []string{"--egress-selector-config-file="}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			file := ""
			if tc.config != nil {
				file = writeFile(t, "egress.yaml", tc.config)
			}
			got, err := ControlPlaneEgress(file)
			if len(tc.wantErr) > 0 {
				if err == nil {
					t.Fatalf("got %q, want an error", got)
				}
				for _, w := range append(tc.wantErr, file) {
					if !strings.Contains(err.Error(), w) {
						t.Errorf("error %q does not contain %q", err, w)
					}
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got != tc.want {
				t.Errorf("got %q, want %q", got, tc.want)
			}
		})
	}

	missing := filepath.Join(t.TempDir(), "nope.yaml")
	if _, err := ControlPlaneEgress(missing); err == nil || !strings.Contains(err.Error(), missing) {
		t.Errorf("a missing file: got %v, want an error naming it", err)
	}
}
