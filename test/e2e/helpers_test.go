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
	"context"
	"crypto/tls"
	"crypto/x509"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/onsi/ginkgo/v2"
	"github.com/onsi/gomega"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/mvp-apiserver/kube-apiserver/test/e2e/harness"
)

// Requests, objects and server pairs the proxying specs share.

func newJob(name string) *batchv1.Job {
	return &batchv1.Job{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: batchv1.JobSpec{Template: corev1.PodTemplateSpec{Spec: corev1.PodSpec{
			RestartPolicy: corev1.RestartPolicyNever,
			Containers:    []corev1.Container{{Name: "c", Image: "busybox"}},
		}}},
	}
}

// ensureJob creates Job name in ns through c unless it exists already: a
// spec that reads a Job an earlier spec of its container creates makes it
// itself when it runs alone.
func ensureJob(ctx context.Context, c kubernetes.Interface, ns, name string) {
	_, err := c.BatchV1().Jobs(ns).Create(ctx, newJob(name), metav1.CreateOptions{})
	if apierrors.IsAlreadyExists(err) {
		return
	}
	gomega.Expect(err).NotTo(gomega.HaveOccurred(), "creating Job %s/%s", ns, name)
}

// rawGet sends a GET to s as the holder of certFile/keyFile with extra headers.
func rawGet(s *harness.Server, certFile, keyFile, path string, headers map[string]string) (*http.Response, []byte, error) {
	req, err := http.NewRequest(http.MethodGet, s.URL+path, nil)
	if err != nil {
		return nil, nil, err
	}
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	resp, err := tlsClient("", certFile, keyFile, cluster.PKI.CAFile).Do(req)
	if err != nil {
		return nil, nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	return resp, body, err
}

// adminGet sends a GET to s as the suite's administrator (in external
// mode, the user of s's kubeconfig).
func adminGet(s *harness.Server, path string, headers map[string]string) (*http.Response, []byte, error) {
	req, err := http.NewRequest(http.MethodGet, s.URL+path, nil)
	if err != nil {
		return nil, nil, err
	}
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	resp, err := s.HTTPClient().Do(req)
	if err != nil {
		return nil, nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	return resp, body, err
}

// metricSum adds the values of the series of metric name whose labels
// contain every one of labels (`key="value"`).
func metricSum(s *harness.Server, name string, labels ...string) (float64, error) {
	_, body, err := adminGet(s, "/metrics", nil)
	if err != nil {
		return 0, err
	}
	sum, _, err := harness.MetricSum(body, name, labels...)
	return sum, err
}

// answered sends n GETs of path to s and returns how many were answered
// 200; the others are logged.
func answered(s *harness.Server, path string, n int) int {
	ok := 0
	for i := range n {
		resp, body, err := adminGet(s, path, nil)
		gomega.Expect(err).NotTo(gomega.HaveOccurred())
		if resp.StatusCode == http.StatusOK {
			ok++
		} else {
			ginkgo.GinkgoWriter.Printf("request %d: %d %s\n", i, resp.StatusCode, body)
		}
	}
	return ok
}

// waitRoute waits until a's table routes batch/v1/jobs to exactly ids.
func waitRoute(ctx context.Context, a *harness.Server, ids ...string) {
	gomega.Eventually(ctx, func(g gomega.Gomega) {
		d, err := debugDocument(a)
		g.Expect(err).NotTo(gomega.HaveOccurred())
		g.Expect(d.Routes["batch/v1/jobs"]).To(gomega.ConsistOf(ids))
	}).WithTimeout(90 * time.Second).WithPolling(500 * time.Millisecond).Should(gomega.Succeed())
}

// startProxyPair starts A, which lacks batch/v1, and B, which serves it,
// creates the namespace on B and waits until A routes Jobs to B. The
// caller stops them: a spec may replace B (restoreProxied).
func startProxyPair(ctx context.Context, a, b harness.ServerOptions, ns string) (*harness.Server, *harness.Server, string) {
	a.Args = append(a.Args, "--runtime-config=batch/v1=false")
	servers := startAll(ctx, a, b)
	sa, sb := servers[0], servers[1]
	idB, err := sb.ID(ctx)
	gomega.Expect(err).NotTo(gomega.HaveOccurred())
	_, err = sb.Client().CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{})
	gomega.Expect(err).NotTo(gomega.HaveOccurred())
	waitRoute(ctx, sa, idB)
	return sa, sb, idB
}

// restoreProxied brings B back after a spec froze, killed or stopped it:
// running, ready, routed to and proxied to by A for Jobs under jobPath.
func restoreProxied(ctx context.Context, a, b *harness.Server, jobPath string) (*harness.Server, string) {
	b, idB := revive(ctx, b)
	gomega.Eventually(ctx, func(g gomega.Gomega) {
		d, err := debugDocument(a)
		g.Expect(err).NotTo(gomega.HaveOccurred())
		g.Expect(d.Routes["batch/v1/jobs"]).To(gomega.ContainElement(idB))
		resp, body, err := adminGet(a, strings.TrimSuffix(jobPath, "/"), nil)
		g.Expect(err).NotTo(gomega.HaveOccurred())
		g.Expect(resp.StatusCode).To(gomega.Equal(200), string(body))
	}).WithTimeout(90*time.Second).WithPolling(500*time.Millisecond).Should(gomega.Succeed(), "A proxies to %s again", b.Opts.Name)
	return b, idB
}

// tlsClient is an HTTP client that dials from localIP (any when empty),
// presents certFile/keyFile (none when empty) and trusts caFiles.
func tlsClient(localIP, certFile, keyFile string, caFiles ...string) *http.Client {
	pool := x509.NewCertPool()
	for _, f := range caFiles {
		data, err := os.ReadFile(f)
		gomega.Expect(err).NotTo(gomega.HaveOccurred())
		gomega.Expect(pool.AppendCertsFromPEM(data)).To(gomega.BeTrue(), f)
	}
	tc := &tls.Config{RootCAs: pool}
	if certFile != "" {
		cert, err := tls.LoadX509KeyPair(certFile, keyFile)
		gomega.Expect(err).NotTo(gomega.HaveOccurred())
		tc.Certificates = []tls.Certificate{cert}
	}
	d := &net.Dialer{Timeout: 10 * time.Second}
	if localIP != "" {
		d.LocalAddr = &net.TCPAddr{IP: net.ParseIP(localIP)}
	}
	return &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{
		DialContext: d.DialContext, TLSClientConfig: tc, ForceAttemptHTTP2: true}}
}

// do sends a GET of url with headers and reads the whole answer.
func do(c *http.Client, url string, headers http.Header) (int, string, error) {
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		return 0, "", err
	}
	for k, vs := range headers {
		req.Header[k] = vs
	}
	resp, err := c.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body), err
}
