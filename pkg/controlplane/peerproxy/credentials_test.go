package peerproxy

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"k8s.io/utils/clock"

	"github.com/mvp-apiserver/kube-apiserver/test/e2e/harness"
)

// Replacing the peer CA bundle and the client certificate on disk takes
// effect without a restart: new connections verify with the new bundle and
// present the new certificate; the old peer is then refused, named.
func TestCredentialsReloadFromDisk(t *testing.T) {
	dir := t.TempDir()
	caFile, certFile, keyFile := filepath.Join(dir, "peer-ca.crt"), filepath.Join(dir, "client.crt"), filepath.Join(dir, "client.key")
	old := newProxyFixture(t) // its peers trust only the old PKI
	for dst, src := range map[string]string{caFile: old.pki.CAFile, certFile: old.pki.ProxyClientCert, keyFile: old.pki.ProxyClientKey} {
		if err := harness.ReplaceFile(dst, src); err != nil {
			t.Fatal(err)
		}
	}
	tr, err := newTransports(ProxyConfig{CAFile: caFile, ClientCertFile: certFile, ClientKeyFile: keyFile, Headers: kubeadmHeaders})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	tr.creds.Run(ctx)
	h := newHealth(clock.RealClock{})
	f := &failover{t: tr, health: h}
	rp := newReverseProxy(f, kubeadmHeaders, func(w http.ResponseWriter, r *http.Request, err error) {
		w.WriteHeader(http.StatusServiceUnavailable)
		io.WriteString(w, err.Error())
	}, copyBuffers)
	fx := &proxyFixture{t: tr, f: f, rp: rp}
	ok := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") })
	oldPeer := old.peer(t, "old", ok)
	get := func(p *Peer) (int, string) {
		rec := httptest.NewRecorder()
		fx.serve(rec, httptest.NewRequest(http.MethodGet, "https://a/apis/batch/v1/jobs", nil), alice, p)
		return rec.Code, rec.Body.String()
	}
	if code, body := get(oldPeer); code != 200 {
		t.Fatalf("before the rotation: %d %s", code, body)
	}

	rotated, err := harness.NewPKI(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	newPeer := (&proxyFixture{pki: rotated}).peer(t, "new", ok)
	for _, swap := range [][2]string{{caFile, rotated.CAFile}, {certFile, rotated.ProxyClientCert}, {keyFile, rotated.ProxyClientKey}} {
		if err := harness.ReplaceFile(swap[0], swap[1]); err != nil {
			t.Fatal(err)
		}
	}
	deadline := time.Now().Add(70 * time.Second) // the files are also read again every minute
	for {
		code, body := get(newPeer)
		if code == 200 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the new material was never used: %d %s", code, body)
		}
		time.Sleep(100 * time.Millisecond)
	}
	code, body := get(oldPeer)
	if code != http.StatusServiceUnavailable || !strings.Contains(body, "is not trusted by --peer-ca-file "+caFile) ||
		!strings.Contains(body, `issuer "CN=mvp-local-ca"`) {
		t.Fatalf("the old peer after the rotation: %d %s", code, body)
	}
}
