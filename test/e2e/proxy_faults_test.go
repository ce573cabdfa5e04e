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
	"encoding/json"
	"strings"
	"time"

	"github.com/onsi/ginkgo/v2"
	"github.com/onsi/gomega"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/mvp-apiserver/kube-apiserver/test/e2e/harness"
)

var _ = ginkgo.Describe("[Feature:MixedVersionProxy] proxying when peers fail", ginkgo.Ordered, ginkgo.ContinueOnFailure, ginkgo.Label(labelHarness), func() {
	const ns = "proxy-faults"
	var a, b *harness.Server
	var cb kubernetes.Interface
	var idB string
	jobPath := "/apis/batch/v1/namespaces/" + ns + "/jobs/"

	ginkgo.BeforeAll(func(ctx context.Context) {
		a, b, idB = startProxyPair(ctx, harness.ServerOptions{Name: "pf-a", IP: "127.0.0.57"}, harness.ServerOptions{Name: "pf-b", IP: "127.0.0.58"}, ns)
		// b, not the B started here: a spec may have replaced it.
		ginkgo.DeferCleanup(func() { a.Stop(30 * time.Second); b.Stop(30 * time.Second) })
		cb = b.Client()
		ensureJob(ctx, cb, ns, "watched")
	})

	// restoreB brings B back as BeforeAll left it, after a spec froze,
	// killed or stopped it.
	restoreB := func(ctx context.Context) { b, idB = restoreProxied(ctx, a, b, jobPath) }

	ginkgo.It("answers 503, and sends nothing to the peer, when --peer-ca-file did not sign the peer's certificate", func(ctx context.Context) {
		other, err := cluster.PKI.OtherCA("other-ca")
		gomega.Expect(err).NotTo(gomega.HaveOccurred())
		untrusting, err := cluster.StartServer(ctx, harness.ServerOptions{Name: "px-untrusting", IP: "127.0.0.53",
			PeerCAFile: other, Args: []string{"--runtime-config=batch/v1=false"}})
		gomega.Expect(err).NotTo(gomega.HaveOccurred())
		defer untrusting.Stop(30 * time.Second)
		waitRoute(ctx, untrusting, idB)

		before, err := metricSum(b, "apiserver_request_total", `resource="jobs"`, `verb="GET"`)
		gomega.Expect(err).NotTo(gomega.HaveOccurred())
		resp, body, err := adminGet(untrusting, jobPath+"watched", nil)
		gomega.Expect(err).NotTo(gomega.HaveOccurred())
		gomega.Expect(resp.StatusCode).To(gomega.Equal(503), string(body))
		gomega.Expect(resp.Header.Get("Retry-After")).NotTo(gomega.BeEmpty())
		gomega.Expect(string(body)).To(gomega.ContainSubstring("certificate is not trusted"))
		after, err := metricSum(b, "apiserver_request_total", `resource="jobs"`, `verb="GET"`)
		gomega.Expect(err).NotTo(gomega.HaveOccurred())
		gomega.Expect(after).To(gomega.Equal(before), "no request reached B")
	})

	ginkgo.It("answers within 10s when the peer is frozen (SIGSTOP)", func(ctx context.Context) {
		gomega.Expect(b.Freeze()).To(gomega.Succeed())
		ginkgo.DeferCleanup(restoreB)
		start := time.Now()
		resp, body, err := adminGet(a, jobPath+"watched", nil)
		took := time.Since(start)
		gomega.Expect(err).NotTo(gomega.HaveOccurred())
		gomega.Expect(took).To(gomega.BeNumerically("<=", 10*time.Second))
		gomega.Expect(resp.StatusCode).To(gomega.Equal(503), string(body))
		gomega.Expect(resp.Header.Get("Retry-After")).NotTo(gomega.BeEmpty())
		ginkgo.GinkgoWriter.Printf("frozen peer: %d in %s: %s\n", resp.StatusCode, took.Round(time.Millisecond), body)
	})

	ginkgo.It("fails over to a third server when a peer is killed: 20 of 20 answered", func(ctx context.Context) {
		gomega.Expect(b.Thaw()).To(gomega.Succeed())
		ensureJob(ctx, cb, ns, "watched")
		c, err := cluster.StartServer(ctx, harness.ServerOptions{Name: "px-c", IP: "127.0.0.54"})
		gomega.Expect(err).NotTo(gomega.HaveOccurred())
		ginkgo.DeferCleanup(func() { c.Stop(30 * time.Second) })
		idC, err := c.ID(ctx)
		gomega.Expect(err).NotTo(gomega.HaveOccurred())
		waitRoute(ctx, a, idB, idC)

		ginkgo.DeferCleanup(restoreB)
		b.Kill()
		gomega.Expect(answered(a, jobPath+"watched", 20)).To(gomega.Equal(20))

		// And with C gone too, a 503 with Retry-After, never a 404.
		c.Kill()
		resp, body, err := adminGet(a, jobPath+"watched", map[string]string{"Accept": "application/json"})
		gomega.Expect(err).NotTo(gomega.HaveOccurred())
		gomega.Expect(resp.StatusCode).To(gomega.Equal(503), string(body))
		gomega.Expect(resp.Header.Get("Retry-After")).To(gomega.MatchRegexp(`^[1-9][0-9]*$`))
		var st metav1.Status
		gomega.Expect(json.Unmarshal(body, &st)).To(gomega.Succeed())
		gomega.Expect(st.Reason).To(gomega.Equal(metav1.StatusReasonServiceUnavailable))
		gomega.Expect(st.Message).To(gomega.ContainSubstring("batch/v1/jobs"))
	})

	ginkgo.It("answers 503, not 404, once the only capable peer stopped gracefully", func(ctx context.Context) {
		ginkgo.DeferCleanup(restoreB)
		var err error
		b, err = b.Restart(ctx)
		gomega.Expect(err).NotTo(gomega.HaveOccurred())
		idB, err = b.ID(ctx)
		gomega.Expect(err).NotTo(gomega.HaveOccurred())
		ensureJob(ctx, cb, ns, "watched")
		gomega.Eventually(ctx, func(g gomega.Gomega) {
			resp, _, err := adminGet(a, jobPath+"watched", nil)
			g.Expect(err).NotTo(gomega.HaveOccurred())
			g.Expect(resp.StatusCode).To(gomega.Equal(200))
		}).WithTimeout(60 * time.Second).Should(gomega.Succeed())

		gomega.Expect(b.Stop(time.Minute)).To(gomega.Succeed())
		gomega.Eventually(ctx, func(g gomega.Gomega) {
			resp, body, err := adminGet(a, jobPath+"watched", map[string]string{"Accept": "application/vnd.kubernetes.protobuf"})
			g.Expect(err).NotTo(gomega.HaveOccurred())
			g.Expect(resp.StatusCode).To(gomega.Equal(503), string(body))
			g.Expect(resp.Header.Get("Content-Type")).To(gomega.Equal("application/vnd.kubernetes.protobuf"), "the Status is negotiated")
			g.Expect(resp.Header.Get("Retry-After")).NotTo(gomega.BeEmpty())
		}).WithTimeout(15 * time.Second).Should(gomega.Succeed())
	})

	ginkgo.It("counts what it did in upstream's metrics and shows peers in /debug/peerproxy", func(ctx context.Context) {
		// What it counts is made here, so that it runs alone too: 20 Jobs
		// read through A from B, then B killed (restored after the spec)
		// and two reads answered 503 on B's failed dials.
		ensureJob(ctx, cb, ns, "watched")
		gomega.Eventually(ctx, func(g gomega.Gomega) {
			resp, body, err := adminGet(a, jobPath+"watched", nil)
			g.Expect(err).NotTo(gomega.HaveOccurred())
			g.Expect(resp.StatusCode).To(gomega.Equal(200), string(body))
		}).WithTimeout(60 * time.Second).Should(gomega.Succeed())
		gomega.Expect(answered(a, jobPath+"watched", 20)).To(gomega.Equal(20))
		ginkgo.DeferCleanup(restoreB)
		b.Kill()
		for range 2 {
			resp, body, err := adminGet(a, jobPath+"watched", nil)
			gomega.Expect(err).NotTo(gomega.HaveOccurred())
			gomega.Expect(resp.StatusCode).To(gomega.Equal(503), string(body))
		}

		ok, err := metricSum(a, "apiserver_rerouted_request_total", `code="200"`, `group="batch"`, `resource="jobs"`)
		gomega.Expect(err).NotTo(gomega.HaveOccurred())
		gomega.Expect(ok).To(gomega.BeNumerically(">=", 20))
		unavailable, err := metricSum(a, "apiserver_rerouted_request_total", `code="503"`, `resource="jobs"`)
		gomega.Expect(err).NotTo(gomega.HaveOccurred())
		gomega.Expect(unavailable).To(gomega.BeNumerically(">=", 2))
		errs, err := metricSum(a, "apiserver_peer_proxy_errors_total", `resource="jobs"`)
		gomega.Expect(err).NotTo(gomega.HaveOccurred())
		gomega.Expect(errs).To(gomega.BeNumerically(">=", 2))
		hist, err := metricSum(a, "apiserver_peer_proxy_request_duration_seconds_count", `resource="jobs"`)
		gomega.Expect(err).NotTo(gomega.HaveOccurred())
		gomega.Expect(hist).To(gomega.BeNumerically(">=", 20))

		d, err := debugDocument(a)
		gomega.Expect(err).NotTo(gomega.HaveOccurred())
		var withError int
		for _, p := range d.Peers {
			if p.LastError != "" {
				withError++
			}
		}
		gomega.Expect(withError).To(gomega.BeNumerically(">=", 1), "the killed peers' last errors are shown")
		gomega.Expect(d.Registered).To(gomega.HaveKey("batch/v1/jobs"))
		// Nothing is logged per request: 20 answered 503s add fewer than 20 lines.
		before := len(strings.Split(a.LogTail(1<<30), "\n"))
		for i := 0; i < 20; i++ {
			resp, _, err := adminGet(a, jobPath+"watched", nil)
			gomega.Expect(err).NotTo(gomega.HaveOccurred())
			gomega.Expect(resp.StatusCode).To(gomega.Equal(503))
		}
		after := len(strings.Split(a.LogTail(1<<30), "\n"))
		gomega.Expect(after-before).To(gomega.BeNumerically("<", 20), "log lines per request")
	})

})
