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
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"sync/atomic"

	"k8s.io/apiserver/pkg/server/dynamiccertificates"
	"k8s.io/klog/v2"
)

// credentials are the certificates of peer traffic: the --peer-ca-file
// bundle that verifies peers, and the front-proxy client certificate this
// server presents. Both are reloaded from disk when their files change
// (watched, and read again every minute), as the aggregator reloads its
// own proxy client certificate; onChange then runs once per reload.
type credentials struct {
	caFile   string
	ca       *dynamiccertificates.DynamicFileCAContent
	cert     *dynamiccertificates.DynamicCertKeyPairContent
	client   atomic.Pointer[clientCert]
	onChange func()
}

// clientCert is the parsed client certificate and how errors name it.
type clientCert struct {
	cert tls.Certificate
	name string
}

// listenerFunc adapts a function to dynamiccertificates.Listener.
type listenerFunc func()

func (f listenerFunc) Enqueue() { f() }

// newCredentials reads the files once; onChange runs after each reload.
func newCredentials(caFile, certFile, keyFile string, onChange func()) (*credentials, error) {
	ca, err := dynamiccertificates.NewDynamicCAContentFromFile("peer-ca", caFile)
	if err != nil {
		return nil, fmt.Errorf("--peer-ca-file %s: %w", caFile, err)
	}
	cert, err := dynamiccertificates.NewDynamicServingContentFromFiles("peer-proxy-client", certFile, keyFile)
	if err != nil {
		return nil, fmt.Errorf("the proxy client certificate (--proxy-client-cert-file %s, --proxy-client-key-file %s): %w", certFile, keyFile, err)
	}
	c := &credentials{caFile: caFile, ca: ca, cert: cert, onChange: onChange}
	if err := c.loadClient(); err != nil {
		return nil, err
	}
	ca.AddListener(listenerFunc(func() {
		klog.InfoS("Reloaded the peer CA bundle; new connections to peers verify with it", "file", caFile)
		c.onChange()
	}))
	cert.AddListener(listenerFunc(func() {
		if err := c.loadClient(); err != nil {
			klog.ErrorS(err, "Reloading the proxy client certificate; peers keep seeing the previous one")
			return
		}
		klog.InfoS("Reloaded the proxy client certificate; new connections to peers present it", "certificate", c.client.Load().name)
		c.onChange()
	}))
	return c, nil
}

// Run watches the files until ctx ends.
func (c *credentials) Run(ctx context.Context) {
	go c.ca.Run(ctx, 1)
	go c.cert.Run(ctx, 1)
}

func (c *credentials) loadClient() error {
	certPEM, keyPEM := c.cert.CurrentCertKeyContent()
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return fmt.Errorf("the proxy client certificate: %w", err)
	}
	name := "unparsable"
	if leaf, err := x509.ParseCertificate(cert.Certificate[0]); err == nil {
		cert.Leaf = leaf
		name = describeCert(leaf)
	}
	c.client.Store(&clientCert{cert: cert, name: name})
	return nil
}

// clientCertificate is tls.Config.GetClientCertificate: always the
// current certificate.
func (c *credentials) clientCertificate(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
	return &c.client.Load().cert, nil
}

// clientCertName names the current client certificate for errors.
func (c *credentials) clientCertName() string { return c.client.Load().name }

// verifyPeer is tls.Config.VerifyConnection: the peer's serving
// certificate must chain to the current bundle and name peerServerName.
// Its error names the certificate and the file.
func (c *credentials) verifyPeer(cs tls.ConnectionState) error {
	if len(cs.PeerCertificates) == 0 {
		return errors.New("the peer presented no serving certificate")
	}
	opts, ok := c.ca.VerifyOptions()
	if !ok {
		return fmt.Errorf("--peer-ca-file %s holds no usable CA bundle", c.caFile)
	}
	opts.DNSName = peerServerName
	opts.KeyUsages = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
	opts.Intermediates = x509.NewCertPool()
	for _, ic := range cs.PeerCertificates[1:] {
		opts.Intermediates.AddCert(ic)
	}
	leaf := cs.PeerCertificates[0]
	if _, err := leaf.Verify(opts); err != nil {
		return &tls.CertificateVerificationError{UnverifiedCertificates: cs.PeerCertificates,
			Err: fmt.Errorf("the peer's serving certificate (%s) is not trusted by --peer-ca-file %s: %w", describeCert(leaf), c.caFile, err)}
	}
	return nil
}

// describeCert names a certificate well enough to find it on disk.
func describeCert(c *x509.Certificate) string {
	return fmt.Sprintf("subject %q, issuer %q, serial %s, valid until %s",
		c.Subject.String(), c.Issuer.String(), c.SerialNumber.Text(16), c.NotAfter.UTC().Format("2006-01-02T15:04:05Z"))
}

// tlsConfig is the TLS configuration of every connection to a peer. Both
// certificates are looked up per handshake, so a reload needs no rebuild;
// the transports are rebuilt anyway so that no request after a reload
// goes out on a connection made before it.
func (c *credentials) tlsConfig() *tls.Config {
	return &tls.Config{
		// Verified in VerifyConnection, against the bundle as it is now.
		InsecureSkipVerify:   true, //nolint:gosec
		VerifyConnection:     c.verifyPeer,
		GetClientCertificate: c.clientCertificate,
		ServerName:           peerServerName,
		MinVersion:           tls.VersionTLS12,
	}
}
