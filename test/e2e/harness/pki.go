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

// Package harness starts real processes for the local mixed-version
// cluster, the end-to-end tests and the benchmarks: PKI written in Go, etcd
// and kube-apiservers (ours or upstream's), each server in its own UTS
// namespace so that its apiserver identity differs.
package harness

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"time"

	"k8s.io/client-go/util/cert"
	"k8s.io/client-go/util/keyutil"
)

// PKI is a cluster's certificates, written under Dir.
type PKI struct {
	Dir string

	CAFile           string // signs serving and client certificates
	FrontProxyCAFile string // signs the proxy client certificate
	ProxyClientCert  string
	ProxyClientKey   string
	AdminCert        string // system:masters
	AdminKey         string
	SAKey            string // signs and verifies service account tokens

	ca, frontProxy authority
}

type authority struct {
	cert *x509.Certificate
	key  crypto.Signer
}

// NewPKI writes a fresh cluster PKI into dir.
func NewPKI(dir string) (*PKI, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	p := &PKI{Dir: dir}
	var err error
	if p.ca, p.CAFile, err = newAuthority(dir, "ca", "mvp-local-ca"); err != nil {
		return nil, err
	}
	if p.frontProxy, p.FrontProxyCAFile, err = newAuthority(dir, "front-proxy-ca", "mvp-local-front-proxy-ca"); err != nil {
		return nil, err
	}
	if p.ProxyClientCert, p.ProxyClientKey, err = p.frontProxy.proxyClient(dir, "front-proxy-client"); err != nil {
		return nil, err
	}
	if p.AdminCert, p.AdminKey, err = p.IssueClient("admin", "kubernetes-admin", "system:masters"); err != nil {
		return nil, err
	}
	saKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	p.SAKey = filepath.Join(dir, "sa.key")
	keyPEM, err := keyutil.MarshalPrivateKeyToPEM(saKey)
	if err != nil {
		return nil, err
	}
	return p, keyutil.WriteKey(p.SAKey, keyPEM)
}

// servingNames are the DNS names of every kube-apiserver's certificate.
var servingNames = []string{"kubernetes", "kubernetes.default", "kubernetes.default.svc", "kubernetes.default.svc.cluster.local", "localhost"}

// IssueServing writes a serving certificate for a kube-apiserver reachable
// at ips, valid for the names peers and clients use.
func (p *PKI) IssueServing(name string, ips ...net.IP) (certFile, keyFile string, err error) {
	return p.ca.serving(p.Dir, name, ips)
}

// IssueClient writes a client certificate for user in groups.
func (p *PKI) IssueClient(name, user string, groups ...string) (certFile, keyFile string, err error) {
	return p.ca.issue(p.Dir, name, pkix.Name{CommonName: user, Organization: groups}, nil, nil, x509.ExtKeyUsageClientAuth)
}

// OtherCA writes a second, unrelated CA: a --peer-ca-file that signed no peer.
func (p *PKI) OtherCA(name string) (string, error) {
	_, file, err := newAuthority(p.Dir, name, "mvp-unrelated-"+name)
	return file, err
}

// CA is a certificate authority of its own, for rotations: a new
// front-proxy or serving CA that replaces the cluster's on disk.
type CA struct {
	File string // its certificate (PEM)
	dir  string
	a    authority
}

// NewCA writes a new CA named name under the PKI's directory.
func (p *PKI) NewCA(name string) (*CA, error) {
	a, file, err := newAuthority(p.Dir, name, "mvp-"+name)
	if err != nil {
		return nil, err
	}
	return &CA{File: file, dir: p.Dir, a: a}, nil
}

// IssueServing writes a kube-apiserver serving certificate signed by c.
func (c *CA) IssueServing(name string, ips ...net.IP) (certFile, keyFile string, err error) {
	return c.a.serving(c.dir, name, ips)
}

// IssueProxyClient writes a front-proxy client certificate signed by c.
func (c *CA) IssueProxyClient(name string) (certFile, keyFile string, err error) {
	return c.a.proxyClient(c.dir, name)
}

// serving issues a kube-apiserver serving certificate for the names peers
// and clients use and for ips.
func (a authority) serving(dir, name string, ips []net.IP) (string, string, error) {
	return a.issue(dir, name, pkix.Name{CommonName: name}, servingNames, ips, x509.ExtKeyUsageServerAuth)
}

// proxyClient issues a front-proxy client certificate (CN front-proxy-client,
// the name --requestheader-allowed-names lists).
func (a authority) proxyClient(dir, name string) (string, string, error) {
	return a.issue(dir, name, pkix.Name{CommonName: "front-proxy-client"}, nil, nil, x509.ExtKeyUsageClientAuth)
}

// ReplaceFile puts a copy of src at dst in one rename, as a certificate
// rotation does: a reader sees the old file or the new one, never half.
func ReplaceFile(dst, src string) error {
	data, err := os.ReadFile(src)
	if err != nil {
		return err
	}
	tmp := dst + ".new"
	if err := os.WriteFile(tmp, data, 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, dst)
}

func newAuthority(dir, name, cn string) (authority, string, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return authority{}, "", err
	}
	c, err := cert.NewSelfSignedCACert(cert.Config{CommonName: cn}, key)
	if err != nil {
		return authority{}, "", err
	}
	certFile := filepath.Join(dir, name+".crt")
	if err := writeCert(certFile, c); err != nil {
		return authority{}, "", err
	}
	keyPEM, err := keyutil.MarshalPrivateKeyToPEM(key)
	if err != nil {
		return authority{}, "", err
	}
	if err := keyutil.WriteKey(filepath.Join(dir, name+".key"), keyPEM); err != nil {
		return authority{}, "", err
	}
	return authority{cert: c, key: key}, certFile, nil
}

func (a authority) issue(dir, name string, subject pkix.Name, dns []string, ips []net.IP, usage x509.ExtKeyUsage) (string, string, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return "", "", err
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 62))
	if err != nil {
		return "", "", err
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      subject,
		DNSNames:     dns,
		IPAddresses:  ips,
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(365 * 24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment,
		ExtKeyUsage:  []x509.ExtKeyUsage{usage},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, a.cert, key.Public(), a.key)
	if err != nil {
		return "", "", fmt.Errorf("signing %s: %w", name, err)
	}
	certFile, keyFile := filepath.Join(dir, name+".crt"), filepath.Join(dir, name+".key")
	if err := writeCert(certFile, &x509.Certificate{Raw: der}); err != nil {
		return "", "", err
	}
	keyPEM, err := keyutil.MarshalPrivateKeyToPEM(key)
	if err != nil {
		return "", "", err
	}
	return certFile, keyFile, keyutil.WriteKey(keyFile, keyPEM)
}

func writeCert(path string, c *x509.Certificate) error {
	data, err := cert.EncodeCertificates(c)
	if err != nil {
		return err
	}
	return os.WriteFile(path, data, 0o644)
}
