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

package e2e

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"github.com/onsi/ginkgo/v2"
	"github.com/onsi/gomega"

	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/mvp-apiserver/kube-apiserver/test/e2e/harness"
)

// auditEvent is what the specs read of an audit.k8s.io/v1 Event.
type auditEvent struct {
	Stage      string `json:"stage"`
	RequestURI string `json:"requestURI"`
	User       struct {
		Username string              `json:"username"`
		Extra    map[string][]string `json:"extra"`
	} `json:"user"`
	SourceIPs      []string `json:"sourceIPs"`
	ResponseStatus *struct {
		Code int `json:"code"`
	} `json:"responseStatus"`
	line string
}

// completedAudit returns the ResponseComplete events of the audit log at
// path whose requestURI is uri.
func completedAudit(path, uri string) ([]auditEvent, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []auditEvent
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var ev auditEvent
		if err := json.Unmarshal(sc.Bytes(), &ev); err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		if ev.Stage == "ResponseComplete" && ev.RequestURI == uri {
			ev.line = sc.Text()
			out = append(out, ev)
		}
	}
	return out, sc.Err()
}

// waitAudit waits for exactly one completed event of uri in the log.
func waitAudit(ctx context.Context, path, uri string) auditEvent {
	var ev auditEvent
	gomega.Eventually(ctx, func(g gomega.Gomega) {
		evs, err := completedAudit(path, uri)
		g.Expect(err).NotTo(gomega.HaveOccurred())
		g.Expect(evs).To(gomega.HaveLen(1), "completed audit events of %s in %s", uri, path)
		ev = evs[0]
	}).WithTimeout(30 * time.Second).WithPolling(250 * time.Millisecond).Should(gomega.Succeed())
	ginkgo.GinkgoWriter.Printf("peer's audit event: %s\n", ev.line)
	return ev
}

// copyInto puts a copy of src in dir under name and returns its path.
func copyInto(dir, src, name string) string {
	dst := filepath.Join(dir, name)
	gomega.Expect(harness.ReplaceFile(dst, src)).To(gomega.Succeed())
	return dst
}

// identityServers are the identity specs' two servers, and the files of
// theirs that a rotation replaces: A's client certificate and peer CA
// bundle, B's front-proxy CA (its serving certificate is the PKI's).
type identityServers struct {
	a, b                                          *harness.Server
	aProxyCert, aProxyKey, aPeerCA, bFrontProxyCA string
}

// startIdentityServers starts, in c, A (prefix-a on ipA, without
// batch/v1) and B (prefix-b on ipB, with bArgs), each reading its own
// copies under dir of c's proxy client certificate, CA and front-proxy CA;
// both stop when the node that started them ends.
func startIdentityServers(ctx context.Context, c *harness.Cluster, dir, prefix, ipA, ipB string, bArgs ...string) identityServers {
	gomega.Expect(os.MkdirAll(dir, 0o700)).To(gomega.Succeed())
	pki := c.PKI
	var s identityServers
	s.aProxyCert, s.aProxyKey = copyInto(dir, pki.ProxyClientCert, "a-proxy-client.crt"), copyInto(dir, pki.ProxyClientKey, "a-proxy-client.key")
	s.aPeerCA = copyInto(dir, pki.CAFile, "a-peer-ca.crt")
	s.bFrontProxyCA = copyInto(dir, pki.FrontProxyCAFile, "b-front-proxy-ca.crt")
	servers := startAllIn(ctx, c,
		harness.ServerOptions{Name: prefix + "-a", IP: ipA, PeerCAFile: s.aPeerCA, Args: []string{"--runtime-config=batch/v1=false",
			"--proxy-client-cert-file=" + s.aProxyCert, "--proxy-client-key-file=" + s.aProxyKey}},
		harness.ServerOptions{Name: prefix + "-b", IP: ipB, Args: append([]string{"--requestheader-client-ca-file=" + s.bFrontProxyCA}, bArgs...)},
	)
	s.a, s.b = servers[0], servers[1]
	ginkgo.DeferCleanup(func() { s.a.Stop(30 * time.Second); s.b.Stop(30 * time.Second) })
	return s
}

var _ = ginkgo.Describe("[Feature:MixedVersionProxy] identity and certificates", ginkgo.Ordered, ginkgo.ContinueOnFailure, ginkgo.Label(labelHarness), func() {
	const (
		ns       = "ident"
		other    = "ident-other"
		clientIP = "127.0.0.50"
		readers  = "ident-job-readers"
	)
	var a, b *harness.Server
	var auditLog string
	jobPath := "/apis/batch/v1/namespaces/" + ns + "/jobs/"

	ginkgo.BeforeAll(func(ctx context.Context) {
		dir := filepath.Join(workDir, "ident")
		gomega.Expect(os.MkdirAll(dir, 0o700)).To(gomega.Succeed())
		policy := filepath.Join(dir, "audit-policy.yaml")
		gomega.Expect(os.WriteFile(policy, []byte("apiVersion: audit.k8s.io/v1\nkind: Policy\nomitStages: [RequestReceived]\nrules:\n- level: Metadata\n"), 0o600)).To(gomega.Succeed())
		auditLog = filepath.Join(dir, "b-audit.log")

		s := startIdentityServers(ctx, cluster, dir, "id", "127.0.0.81", "127.0.0.82",
			"--audit-policy-file="+policy, "--audit-log-path="+auditLog)
		a, b = s.a, s.b
		cb := b.Client()
		for _, n := range []string{ns, other} {
			_, err := cb.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: n}}, metav1.CreateOptions{})
			gomega.Expect(err).NotTo(gomega.HaveOccurred())
		}
		_, err := cb.BatchV1().Jobs(ns).Create(ctx, newJob("audited"), metav1.CreateOptions{})
		gomega.Expect(err).NotTo(gomega.HaveOccurred())
		_, err = cb.RbacV1().ClusterRoles().Create(ctx, &rbacv1.ClusterRole{ObjectMeta: metav1.ObjectMeta{Name: readers},
			Rules: []rbacv1.PolicyRule{{APIGroups: []string{"batch"}, Resources: []string{"jobs"}, Verbs: []string{"get", "list", "watch"}}}}, metav1.CreateOptions{})
		gomega.Expect(err).NotTo(gomega.HaveOccurred())
		_, err = cb.RbacV1().ClusterRoleBindings().Create(ctx, &rbacv1.ClusterRoleBinding{ObjectMeta: metav1.ObjectMeta{Name: readers},
			RoleRef:  rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: readers},
			Subjects: []rbacv1.Subject{{Kind: rbacv1.GroupKind, APIGroup: rbacv1.GroupName, Name: readers}}}, metav1.CreateOptions{})
		gomega.Expect(err).NotTo(gomega.HaveOccurred())
		idB, err := b.ID(ctx)
		gomega.Expect(err).NotTo(gomega.HaveOccurred())
		waitRoute(ctx, a, idB)
	})

	ginkgo.It("names the client, not A, first in the peer's audit sourceIPs, after any load balancer", func(ctx context.Context) {
		c := tlsClient(clientIP, cluster.PKI.AdminCert, cluster.PKI.AdminKey, cluster.PKI.CAFile)
		code, body, err := do(c, a.URL+jobPath+"audited", nil)
		gomega.Expect(err).NotTo(gomega.HaveOccurred())
		gomega.Expect(code).To(gomega.Equal(200), body)
		ev := waitAudit(ctx, auditLog, jobPath+"audited")
		gomega.Expect(ev.User.Username).To(gomega.Equal("kubernetes-admin"))
		// Then the address A dialled B from (on loopback, 127.0.0.1).
		gomega.Expect(ev.SourceIPs).To(gomega.HaveLen(2))
		gomega.Expect(ev.SourceIPs[0]).To(gomega.Equal(clientIP))
		fromA := ev.SourceIPs[1]

		// What a front load balancer set is kept, and the client follows it.
		uri := jobPath + "audited?lb=1"
		code, body, err = do(c, a.URL+uri, http.Header{"X-Forwarded-For": {"203.0.113.7"}})
		gomega.Expect(err).NotTo(gomega.HaveOccurred())
		gomega.Expect(code).To(gomega.Equal(200), body)
		ev = waitAudit(ctx, auditLog, uri)
		gomega.Expect(ev.SourceIPs).To(gomega.Equal([]string{"203.0.113.7", clientIP, fromA}))
	})

	ginkgo.It("carries extras whose keys hold '/', ':', spaces and non-ASCII to the peer byte for byte", func(ctx context.Context) {
		c := a.HTTPClient()
		for i, tt := range []struct {
			user, headerKey, key, value string
		}{
			{"oidc:tenant-user", "example.org%2Ftenant%3Aid", "example.org/tenant:id", "t-42"},
			{"zoë", "example.org%2Fh%C3%B6he%20zone", "example.org/höhe zone", "süd ost, 北"},
		} {
			uri := fmt.Sprintf("%saudited?extra=%d", jobPath, i)
			code, body, err := do(c, a.URL+uri, http.Header{
				"Impersonate-User":                  {tt.user},
				"Impersonate-Group":                 {readers},
				"Impersonate-Extra-" + tt.headerKey: {tt.value},
			})
			gomega.Expect(err).NotTo(gomega.HaveOccurred())
			gomega.Expect(code).To(gomega.Equal(200), "as %s: %s", tt.user, body)
			ev := waitAudit(ctx, auditLog, uri)
			gomega.Expect(ev.User.Username).To(gomega.Equal(tt.user))
			gomega.Expect(ev.User.Extra).To(gomega.Equal(map[string][]string{tt.key: {tt.value}}))
		}
	})

	ginkgo.It("lets a ServiceAccount token bound to read Jobs in one namespace read them there (200) and nowhere else (403), through A", func(ctx context.Context) {
		cb := b.Client()
		_, err := cb.CoreV1().ServiceAccounts(ns).Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "reader"}}, metav1.CreateOptions{})
		gomega.Expect(err).NotTo(gomega.HaveOccurred())
		_, err = cb.RbacV1().RoleBindings(ns).Create(ctx, &rbacv1.RoleBinding{ObjectMeta: metav1.ObjectMeta{Name: "reader"},
			RoleRef:  rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: readers},
			Subjects: []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Name: "reader", Namespace: ns}}}, metav1.CreateOptions{})
		gomega.Expect(err).NotTo(gomega.HaveOccurred())
		tr, err := cb.CoreV1().ServiceAccounts(ns).CreateToken(ctx, "reader", &authenticationv1.TokenRequest{}, metav1.CreateOptions{})
		gomega.Expect(err).NotTo(gomega.HaveOccurred())
		bearer := http.Header{"Authorization": {"Bearer " + tr.Status.Token}}
		c := tlsClient("", "", "", cluster.PKI.CAFile)

		// RBAC takes a moment to reach A's and B's authorizer caches; each
		// attempt has a URI of its own, to find the one that passed in B's log.
		var uri string
		attempt := 0
		gomega.Eventually(ctx, func() (int, error) {
			attempt++
			uri = fmt.Sprintf("%saudited?sa=%d", jobPath, attempt)
			code, _, err := do(c, a.URL+uri, bearer)
			return code, err
		}).WithTimeout(30 * time.Second).WithPolling(250 * time.Millisecond).Should(gomega.Equal(200))
		code, body, err := do(c, a.URL+"/apis/batch/v1/namespaces/"+other+"/jobs", bearer)
		gomega.Expect(err).NotTo(gomega.HaveOccurred())
		gomega.Expect(code).To(gomega.Equal(403), body)

		// B authorized the token's user, extras and all.
		ev := waitAudit(ctx, auditLog, uri)
		gomega.Expect(ev.User.Username).To(gomega.Equal("system:serviceaccount:" + ns + ":reader"))
		gomega.Expect(ev.User.Extra).To(gomega.HaveKey("authentication.kubernetes.io/credential-id"))
	})

	ginkgo.It("keeps a peer healthy when clients give up: no 'context canceled' as its last error", func(ctx context.Context) {
		c := a.HTTPClient()
		for i := range 5 {
			// A watch the client drops, and a GET it gives up on at once.
			wctx, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
			req, _ := http.NewRequestWithContext(wctx, http.MethodGet, a.URL+jobPath+"?watch=true", nil)
			if resp, err := c.Do(req); err == nil {
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
			}
			cancel()
			gctx, cancel := context.WithTimeout(ctx, time.Duration(i+1)*time.Millisecond)
			req, _ = http.NewRequestWithContext(gctx, http.MethodGet, a.URL+jobPath+"audited", nil)
			if resp, err := c.Do(req); err == nil {
				resp.Body.Close()
			}
			cancel()
		}
		d, err := debugDocument(a)
		gomega.Expect(err).NotTo(gomega.HaveOccurred())
		gomega.Expect(d.Peers).NotTo(gomega.BeEmpty())
		for _, p := range d.Peers {
			gomega.Expect(p.Healthy).To(gomega.BeTrue(), "peer %s: %+v", p.ID, p)
			gomega.Expect(p.LastError).NotTo(gomega.ContainSubstring("context canceled"), "peer %s", p.ID)
		}
		code, body, err := do(c, a.URL+jobPath+"audited", nil)
		gomega.Expect(err).NotTo(gomega.HaveOccurred())
		gomega.Expect(code).To(gomega.Equal(200), body)
	})

	// On servers of its own, in an etcd and PKI of their own (no other
	// server of batch/v1 in A's route): the rotation leaves B's serving
	// certificate signed by a CA that is not its cluster's.
	ginkgo.It("proxies again within 90s, without a restart, once the front-proxy CA, A's client certificate and the peer CA are replaced on disk", func(ctx context.Context) {
		rc := ownCluster(ctx, "ident-rotation")
		dir := filepath.Join(rc.Dir, "ident")
		s := startIdentityServers(ctx, rc, dir, "id-rot", "127.0.0.83", "127.0.0.84")
		a, b := s.a, s.b
		aProxyCert, aProxyKey, aPeerCA, bFrontProxyCA := s.aProxyCert, s.aProxyKey, s.aPeerCA, s.bFrontProxyCA
		cb := b.Client()
		_, err := cb.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{})
		gomega.Expect(err).NotTo(gomega.HaveOccurred())
		_, err = cb.BatchV1().Jobs(ns).Create(ctx, newJob("audited"), metav1.CreateOptions{})
		gomega.Expect(err).NotTo(gomega.HaveOccurred())
		idB, err := b.ID(ctx)
		gomega.Expect(err).NotTo(gomega.HaveOccurred())
		waitRoute(ctx, a, idB)

		pid := a.PID()
		pki := rc.PKI
		frontProxy2, err := pki.NewCA("ident-front-proxy-ca-2")
		gomega.Expect(err).NotTo(gomega.HaveOccurred())
		newCert, newKey, err := frontProxy2.IssueProxyClient("ident-proxy-client-2")
		gomega.Expect(err).NotTo(gomega.HaveOccurred())
		serving2, err := pki.NewCA("ident-serving-ca-2")
		gomega.Expect(err).NotTo(gomega.HaveOccurred())
		bCert2, bKey2, err := serving2.IssueServing("ident-b-2", net.ParseIP(b.Opts.IP))
		gomega.Expect(err).NotTo(gomega.HaveOccurred())
		oldCert, oldKey := copyInto(dir, aProxyCert, "old-proxy-client.crt"), copyInto(dir, aProxyKey, "old-proxy-client.key")
		replace := func(swaps ...[2]string) {
			for _, swap := range swaps {
				gomega.Expect(harness.ReplaceFile(swap[0], swap[1])).To(gomega.Succeed())
			}
		}
		c := a.HTTPClient()
		// throughA polls a GET through A until it answers want and whose
		// body holds every one of texts; it returns how long that took.
		throughA := func(want int, texts ...string) time.Duration {
			start := time.Now()
			gomega.Eventually(ctx, func(g gomega.Gomega) {
				code, body, err := do(c, a.URL+jobPath+"audited", nil)
				g.Expect(err).NotTo(gomega.HaveOccurred())
				g.Expect(code).To(gomega.Equal(want), body)
				for _, t := range texts {
					g.Expect(body).To(gomega.ContainSubstring(t))
				}
				if want != 200 {
					ginkgo.GinkgoWriter.Printf("through A: %d %s\n", code, body)
				}
			}).WithTimeout(90 * time.Second).WithPolling(250 * time.Millisecond).Should(gomega.Succeed())
			return time.Since(start)
		}

		// Straight to B as a front proxy: with the old certificate, before.
		asFrontProxy := http.Header{"X-Remote-User": {"kubernetes-admin"}, "X-Remote-Group": {"system:masters"}}
		direct := func(cert, key string) (int, string, error) {
			return do(tlsClient("", cert, key, pki.CAFile, serving2.File), b.URL+jobPath+"audited", asFrontProxy)
		}
		code, body, err := direct(oldCert, oldKey)
		gomega.Expect(err).NotTo(gomega.HaveOccurred())
		gomega.Expect(code).To(gomega.Equal(200), "B trusts the old front-proxy certificate before the rotation: %s", body)

		// 1. The front-proxy CA is renewed: B's copy first. Once B dropped
		// the old CA (the old certificate is refused there directly), A's
		// 503 names the certificate B refused; once A's certificate is
		// replaced too, A proxies again.
		replace([2]string{bFrontProxyCA, frontProxy2.File})
		gomega.Eventually(ctx, func() (int, error) {
			code, _, err := direct(oldCert, oldKey)
			return code, err
		}).WithTimeout(70 * time.Second).WithPolling(250 * time.Millisecond).Should(gomega.BeElementOf(401, 403))
		code, body, err = direct(oldCert, oldKey)
		gomega.Expect(err).NotTo(gomega.HaveOccurred())
		if code == 403 {
			gomega.Expect(body).To(gomega.ContainSubstring("system:anonymous"))
		}
		ginkgo.GinkgoWriter.Printf("B directly, old front-proxy certificate, after B's rotation: %d %s\n", code, body)
		throughA(503, "did not accept this server's proxy client certificate", `issuer \"CN=mvp-local-front-proxy-ca\"`)
		replace([2]string{aProxyCert, newCert}, [2]string{aProxyKey, newKey})
		took := throughA(200)
		ginkgo.GinkgoWriter.Printf("proxying through A answered 200 %.2fs after A's client certificate was replaced\n", took.Seconds())
		code, body, err = direct(newCert, newKey)
		gomega.Expect(err).NotTo(gomega.HaveOccurred())
		gomega.Expect(code).To(gomega.Equal(200), "B accepts the new front-proxy certificate: %s", body)

		// 2. The serving CA is renewed: B's certificate and A's peer CA
		// bundle, which then holds the new CA only.
		replace([2]string{filepath.Join(pki.Dir, b.Opts.Name+".crt"), bCert2}, [2]string{filepath.Join(pki.Dir, b.Opts.Name+".key"), bKey2},
			[2]string{aPeerCA, serving2.File})
		gomega.Eventually(ctx, func() (int, error) {
			code, _, err := do(tlsClient("", newCert, newKey, serving2.File), b.URL+jobPath+"audited", asFrontProxy)
			return code, err
		}).WithTimeout(70*time.Second).WithPolling(250*time.Millisecond).Should(gomega.Equal(200), "B serves the new CA's certificate")
		took = throughA(200)
		ginkgo.GinkgoWriter.Printf("proxying through A answered 200 %.2fs after B serves the new CA's certificate\n", took.Seconds())
		for range 10 {
			code, body, err := do(c, a.URL+jobPath+"audited", nil)
			gomega.Expect(err).NotTo(gomega.HaveOccurred())
			gomega.Expect(code).To(gomega.Equal(200), body)
		}
		gomega.Expect(a.Exited()).To(gomega.BeFalse())
		gomega.Expect(a.PID()).To(gomega.Equal(pid), "A was not restarted")

		// Each reload was logged once.
		gomega.Expect(harness.LogLines(a.LogPath, "Reloaded the proxy client certificate")).To(gomega.HaveLen(1))
		gomega.Expect(harness.LogLines(a.LogPath, "Reloaded the peer CA bundle")).To(gomega.HaveLen(1))
	})
})
