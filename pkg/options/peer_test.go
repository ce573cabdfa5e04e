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
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/spf13/pflag"
	"k8s.io/client-go/util/cert"
)

func writeFile(t *testing.T, name string, data []byte) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func testCA(t *testing.T) []byte {
	t.Helper()
	certPEM, _, err := cert.GenerateSelfSignedCertKey("peer-ca", nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	return certPEM
}

func TestValidate(t *testing.T) {
	ca := testCA(t)
	caFile := writeFile(t, "ca.crt", ca)
	keyOnly := writeFile(t, "key.pem", []byte("-----BEGIN RSA PRIVATE KEY-----\nAAAA\n-----END RSA PRIVATE KEY-----\n"))
	garbage := writeFile(t, "garbage", []byte("not a certificate"))
	trailing := writeFile(t, "trailing", append(append([]byte{}, ca...), []byte("junk")...))
	badDER := writeFile(t, "baddir", []byte("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"))
	missing := filepath.Join(t.TempDir(), "does-not-exist")

	on := func(f PeerFlags) PeerFlags { f.GateEnabled = true; return f }
	kubeadmHeaders := RequestHeader{ClientCAFile: "front-proxy-ca.crt", UsernameHeaders: []string{"X-Remote-User"},
		GroupHeaders: []string{"X-Remote-Group"}, ExtraPrefixes: []string{"X-Remote-Extra-"}}
	withHeaders := func(f PeerFlags) PeerFlags { f.RequestHeader = kubeadmHeaders; return f }
	withClient := func(f PeerFlags) PeerFlags {
		f.ProxyClientCertFile, f.ProxyClientKeyFile = "client.crt", "client.key"
		return withHeaders(f)
	}
	without := func(edit func(*RequestHeader)) PeerFlags {
		f := on(withClient(PeerFlags{CAFile: caFile}))
		edit(&f.RequestHeader)
		return f
	}

	tests := []struct {
		name  string
		flags PeerFlags
		// want lists substrings, one per expected error, in order.
		want []string
	}{
		{name: "gate off, nothing set", flags: PeerFlags{}},
		{name: "gate on, nothing set", flags: on(PeerFlags{})},
		{name: "gate on, all valid", flags: on(withClient(PeerFlags{CAFile: caFile, AdvertiseIP: "10.0.0.1", AdvertisePort: "6443"}))},
		{name: "gate on, ipv6", flags: on(PeerFlags{AdvertiseIP: "fd00::1"})},
		{name: "gate off with ca file", flags: PeerFlags{CAFile: caFile}, want: []string{"--peer-ca-file requires the UnknownVersionInteroperabilityProxy"}},
		{name: "gate off with ip", flags: PeerFlags{AdvertiseIP: "10.0.0.1"}, want: []string{"--peer-advertise-ip requires"}},
		{name: "gate off with port", flags: PeerFlags{AdvertisePort: "6443"}, want: []string{"--peer-advertise-port requires"}},
		{name: "gate off with all three", flags: PeerFlags{CAFile: caFile, AdvertiseIP: "10.0.0.1", AdvertisePort: "1"},
			want: []string{"--peer-ca-file", "--peer-advertise-ip", "--peer-advertise-port"}},
		{name: "not an ip", flags: on(PeerFlags{AdvertiseIP: "not-an-ip"}), want: []string{`--peer-advertise-ip=not-an-ip is not a valid IP`}},
		{name: "unspecified ip", flags: on(PeerFlags{AdvertiseIP: "0.0.0.0"}), want: []string{`--peer-advertise-ip=0.0.0.0 is unspecified`}},
		{name: "port too large", flags: on(PeerFlags{AdvertisePort: "70000"}), want: []string{`--peer-advertise-port=70000 is not a valid port`}},
		{name: "port zero", flags: on(PeerFlags{AdvertisePort: "0"}), want: []string{`--peer-advertise-port=0 is not`}},
		{name: "port not a number", flags: on(PeerFlags{AdvertisePort: "https"}), want: []string{`--peer-advertise-port=https is not`}},
		{name: "ca unreadable", flags: on(withClient(PeerFlags{CAFile: missing})), want: []string{"--peer-ca-file=" + missing + " cannot be read"}},
		{name: "ca not pem", flags: on(withClient(PeerFlags{CAFile: garbage})), want: []string{"--peer-ca-file=" + garbage + " holds no PEM certificate"}},
		{name: "ca holds a key", flags: on(withClient(PeerFlags{CAFile: keyOnly})), want: []string{`holds a PEM block of type RSA PRIVATE KEY;`}},
		{name: "ca with trailing junk", flags: on(withClient(PeerFlags{CAFile: trailing})), want: []string{"has data after its last PEM certificate"}},
		{name: "ca not parseable", flags: on(withClient(PeerFlags{CAFile: badDER})), want: []string{"holds a certificate that does not parse"}},
		{name: "proxy without client cert", flags: on(withHeaders(PeerFlags{CAFile: caFile, ProxyClientKeyFile: "k"})),
			want: []string{"--peer-ca-file enables proxying to peers, which requires --proxy-client-cert-file and --proxy-client-key-file"}},
		{name: "proxy without client key", flags: on(withHeaders(PeerFlags{CAFile: caFile, ProxyClientCertFile: "c"})), want: []string{"--proxy-client-key-file"}},
		{name: "proxy without a username header", flags: without(func(r *RequestHeader) { r.UsernameHeaders = nil }),
			want: []string{"front-proxy headers named by --requestheader-username-headers: it is not set"}},
		{name: "proxy with a blank group header", flags: without(func(r *RequestHeader) { r.GroupHeaders = []string{" "} }),
			want: []string{"--requestheader-group-headers: it is not set"}},
		{name: "proxy without an extra prefix", flags: without(func(r *RequestHeader) { r.ExtraPrefixes = nil }),
			want: []string{"--requestheader-extra-headers-prefix"}},
		{name: "proxy without the front-proxy CA", flags: without(func(r *RequestHeader) { r.ClientCAFile = "" }),
			want: []string{"signed by --requestheader-client-ca-file: it is not set"}},
		{name: "proxy without any request-header flag", flags: without(func(r *RequestHeader) { *r = RequestHeader{} }),
			want: []string{"--requestheader-username-headers", "--requestheader-group-headers", "--requestheader-extra-headers-prefix", "--requestheader-client-ca-file"}},
		{name: "no uid header is fine", flags: without(func(r *RequestHeader) { r.UIDHeaders = nil })},
		{name: "registering without proxying needs no request-header flag", flags: on(PeerFlags{AdvertiseIP: "10.0.0.1"})},
		{name: "storage version api disabled", flags: on(PeerFlags{RuntimeConfig: map[string]string{"internal.apiserver.k8s.io/v1alpha1": "false"}}),
			want: []string{"--runtime-config=internal.apiserver.k8s.io/v1alpha1=false conflicts"}},
		{name: "storageversions resource disabled", flags: on(PeerFlags{RuntimeConfig: map[string]string{"internal.apiserver.k8s.io/v1alpha1/storageversions": "false"}}),
			want: []string{"--runtime-config=internal.apiserver.k8s.io/v1alpha1/storageversions=false"}},
		{name: "storage version api disabled, gate off", flags: PeerFlags{RuntimeConfig: map[string]string{"internal.apiserver.k8s.io/v1alpha1": "false"}}},
		{name: "retention valid", flags: on(PeerFlags{Retention: "45s"})},
		{name: "retention not a duration", flags: on(PeerFlags{Retention: "soon"}), want: []string{`$MVP_PEER_RETENTION=soon is not a valid retention`}},
		{name: "retention too short", flags: on(PeerFlags{Retention: "10ms"}), want: []string{`$MVP_PEER_RETENTION=10ms is not`}},
		{name: "other group disabled", flags: on(PeerFlags{RuntimeConfig: map[string]string{"batch/v1": "false"}})},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			errs := Validate(tt.flags)
			if len(errs) != len(tt.want) {
				t.Fatalf("got %d errors %v, want %d matching %q", len(errs), errs, len(tt.want), tt.want)
			}
			for i, want := range tt.want {
				if !strings.Contains(errs[i].Error(), want) {
					t.Errorf("error %d = %q, want it to contain %q", i, errs[i], want)
				}
			}
		})
	}
}

func TestResolve(t *testing.T) {
	caFile := writeFile(t, "ca.crt", testCA(t))
	host := func() (net.IP, error) { return net.ParseIP("192.0.2.7"), nil }
	noHost := func() (net.IP, error) { return nil, errors.New("no route") }

	tests := []struct {
		name        string
		flags       PeerFlags
		addrs       Addresses
		wantAddr    string
		wantProxy   bool
		wantErr     string
		wantEnabled bool
	}{
		{name: "gate off", flags: PeerFlags{}, addrs: Addresses{SecurePort: 6443, HostIP: host}},
		{name: "explicit ip and port", flags: PeerFlags{GateEnabled: true, AdvertiseIP: "10.1.1.1", AdvertisePort: "7443"},
			addrs: Addresses{AdvertiseAddress: net.ParseIP("10.9.9.9"), SecurePort: 6443, HostIP: host}, wantAddr: "10.1.1.1:7443", wantEnabled: true},
		{name: "ip only takes secure port", flags: PeerFlags{GateEnabled: true, AdvertiseIP: "10.1.1.1"},
			addrs: Addresses{SecurePort: 6443, HostIP: host}, wantAddr: "10.1.1.1:6443", wantEnabled: true},
		{name: "port only takes advertise address", flags: PeerFlags{GateEnabled: true, AdvertisePort: "7443"},
			addrs: Addresses{AdvertiseAddress: net.ParseIP("10.9.9.9"), SecurePort: 6443, HostIP: host}, wantAddr: "10.9.9.9:7443", wantEnabled: true},
		{name: "falls back to bind address", flags: PeerFlags{GateEnabled: true},
			addrs: Addresses{BindAddress: net.ParseIP("127.0.0.2"), SecurePort: 6443, HostIP: host}, wantAddr: "127.0.0.2:6443", wantEnabled: true},
		{name: "unspecified advertise and bind fall to host", flags: PeerFlags{GateEnabled: true},
			addrs: Addresses{AdvertiseAddress: net.IPv4zero, BindAddress: net.IPv4zero, SecurePort: 6443, HostIP: host}, wantAddr: "192.0.2.7:6443", wantEnabled: true},
		{name: "ipv6 joined with brackets", flags: PeerFlags{GateEnabled: true, AdvertiseIP: "fd00::1"},
			addrs: Addresses{SecurePort: 6443}, wantAddr: "[fd00::1]:6443", wantEnabled: true},
		{name: "no host interface", flags: PeerFlags{GateEnabled: true},
			addrs: Addresses{SecurePort: 6443, HostIP: noHost}, wantErr: "--peer-advertise-ip is not set and the host's default interface has no usable IP"},
		{name: "no port anywhere", flags: PeerFlags{GateEnabled: true, AdvertiseIP: "10.1.1.1"},
			addrs: Addresses{SecurePort: 0}, wantErr: "--peer-advertise-port is not set and --secure-port is 0"},
		{name: "proxy on", flags: PeerFlags{GateEnabled: true, CAFile: caFile, ProxyClientCertFile: "c", ProxyClientKeyFile: "k", RequestHeader: RequestHeader{
			ClientCAFile: "fp.crt", UsernameHeaders: []string{"X-User"}, GroupHeaders: []string{"X-Group"}, ExtraPrefixes: []string{"X-Extra-"}}},
			addrs: Addresses{SecurePort: 6443, HostIP: host}, wantAddr: "192.0.2.7:6443", wantProxy: true, wantEnabled: true},
		{name: "invalid flags are refused", flags: PeerFlags{GateEnabled: true, AdvertisePort: "70000"},
			addrs: Addresses{SecurePort: 6443, HostIP: host}, wantErr: "--peer-advertise-port"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Resolve(tt.flags, tt.addrs)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want it to contain %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := c.AdvertiseAddress(); got != tt.wantAddr {
				t.Errorf("address = %q, want %q", got, tt.wantAddr)
			}
			if c.Enabled != tt.wantEnabled || c.ProxyEnabled != tt.wantProxy {
				t.Errorf("enabled=%v proxy=%v, want %v %v", c.Enabled, c.ProxyEnabled, tt.wantEnabled, tt.wantProxy)
			}
			if tt.wantProxy && (c.CAFile != tt.flags.CAFile || c.RequestHeader.UsernameHeaders[0] != "X-User") {
				t.Errorf("CA file %q, request header %+v not carried over", c.CAFile, c.RequestHeader)
			}
		})
	}
}

func TestEnableStorageVersionAPI(t *testing.T) {
	rc := map[string]string{"batch/v1": "false"}
	EnableStorageVersionAPI(rc)
	if rc[StorageVersionGroupVersion] != "true" || rc["batch/v1"] != "false" || len(rc) != 2 {
		t.Fatalf("runtime config = %v", rc)
	}
	rc = map[string]string{StorageVersionGroupVersion: "true"}
	EnableStorageVersionAPI(rc)
	if len(rc) != 1 {
		t.Fatalf("runtime config = %v", rc)
	}
}

func TestSetHelp(t *testing.T) {
	fs := pflag.NewFlagSet("misc", pflag.ContinueOnError)
	var a, b, c string
	fs.StringVar(&a, FlagPeerCAFile, "", "old")
	fs.StringVar(&b, FlagPeerAdvertiseIP, "", "old")
	if err := SetHelp(fs); err == nil || !strings.Contains(err.Error(), "--peer-advertise-port is not registered") {
		t.Fatalf("missing flag not reported: %v", err)
	}
	fs.StringVar(&c, FlagPeerAdvertisePort, "", "old")
	if err := SetHelp(fs); err != nil {
		t.Fatal(err)
	}
	for name := range usage {
		if u := fs.Lookup(name).Usage; u == "old" || !strings.HasSuffix(u, ".") {
			t.Errorf("--%s usage = %q", name, u)
		}
	}
}
