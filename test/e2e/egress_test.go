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
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/onsi/ginkgo/v2"
	"github.com/onsi/gomega"
	apidiscoveryv2 "k8s.io/api/apidiscovery/v2"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"

	"github.com/mvp-apiserver/kube-apiserver/pkg/controlplane/peerproxy/discovery"
	"github.com/mvp-apiserver/kube-apiserver/test/e2e/harness"
)

// writeEgressConfig writes an EgressSelectorConfiguration with one
// controlplane selection (its connection given as YAML) under dir.
func writeEgressConfig(dir, name, connection string) string {
	path := filepath.Join(dir, name)
	data := "apiVersion: apiserver.k8s.io/v1beta1\nkind: EgressSelectorConfiguration\negressSelections:\n- name: controlplane\n  connection:\n" + connection
	gomega.Expect(os.WriteFile(path, []byte(data), 0o600)).To(gomega.Succeed())
	return path
}

// discoveryPeer returns a's discovery record of peer id.
func discoveryPeer(a *harness.Server, id string) (discovery.PeerState, error) {
	d, err := debugDocument(a)
	if err != nil {
		return discovery.PeerState{}, err
	}
	if d.Discovery != nil {
		for _, p := range d.Discovery.Peers {
			if p.ID == id {
				return p, nil
			}
		}
	}
	return discovery.PeerState{}, fmt.Errorf("no discovery record of %s", id)
}

var _ = ginkgo.Describe("[Feature:MixedVersionProxy] egress", ginkgo.Ordered, ginkgo.ContinueOnFailure, ginkgo.Label(labelHarness), func() {
	const ns = "egress"
	var a, b *harness.Server
	var proxy *harness.EgressProxy
	var idB, addrB string
	jobPath := "/apis/batch/v1/namespaces/" + ns + "/jobs/"

	ginkgo.BeforeAll(func(ctx context.Context) {
		dir := filepath.Join(workDir, "egress")
		var err error
		proxy, err = harness.StartEgressProxy(ctx, dir, "127.0.0.71")
		gomega.Expect(err).NotTo(gomega.HaveOccurred())
		ginkgo.DeferCleanup(proxy.Close)
		config := writeEgressConfig(dir, "egress-uds.yaml",
			"    proxyProtocol: HTTPConnect\n    transport:\n      uds:\n        udsName: "+proxy.Socket+"\n")

		servers := startAll(ctx,
			harness.ServerOptions{Name: "eg-a", IP: "127.0.0.72",
				Args: []string{"--runtime-config=batch/v1=false", "--egress-selector-config-file=" + config}},
			harness.ServerOptions{Name: "eg-b", IP: "127.0.0.73"},
		)
		a, b = servers[0], servers[1]
		ginkgo.DeferCleanup(func() { a.Stop(30 * time.Second); b.Stop(30 * time.Second) })
		addrB = net.JoinHostPort(b.Opts.IP, strconv.Itoa(b.Opts.Port))
		idB, err = b.ID(ctx)
		gomega.Expect(err).NotTo(gomega.HaveOccurred())
		_, err = b.Client().CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{})
		gomega.Expect(err).NotTo(gomega.HaveOccurred())
		waitRoute(ctx, a, idB)
	})

	// restore brings the path back as BeforeAll left it, after a spec
	// stopped or froze tinyproxy or killed B: tinyproxy running and
	// thawed, B ready, A holding fresh discovery of B and proxying to it.
	restore := func(ctx context.Context) {
		if !proxy.Running() {
			gomega.Expect(proxy.StartProxy(ctx)).To(gomega.Succeed())
		}
		gomega.Expect(proxy.Thaw()).To(gomega.Succeed())
		b, idB = revive(ctx, b)
		gomega.Eventually(ctx, func(g gomega.Gomega) {
			p, err := discoveryPeer(a, idB)
			g.Expect(err).NotTo(gomega.HaveOccurred())
			g.Expect(p.Fresh).To(gomega.BeTrue(), "A's discovery of B")
			resp, body, err := adminGet(a, strings.TrimSuffix(jobPath, "/"), nil)
			g.Expect(err).NotTo(gomega.HaveOccurred())
			g.Expect(resp.StatusCode).To(gomega.Equal(200), string(body))
		}).WithTimeout(90*time.Second).WithPolling(500*time.Millisecond).Should(gomega.Succeed(), "A proxies to B through the egress proxy again")
	}

	// discoveryFailsOnTheProxy waits until A's discovery of B has failed
	// on the egress proxy, and says so.
	discoveryFailsOnTheProxy := func(ctx context.Context) {
		gomega.Eventually(ctx, func(g gomega.Gomega) {
			p, err := discoveryPeer(a, idB)
			g.Expect(err).NotTo(gomega.HaveOccurred())
			g.Expect(p.Fresh).To(gomega.BeFalse())
			g.Expect(p.LastError).To(gomega.ContainSubstring("egress proxy"))
		}).WithTimeout(30 * time.Second).WithPolling(500 * time.Millisecond).Should(gomega.Succeed())
	}

	ginkgo.It("reaches B only through the egress proxy: discovery on one tunnel, then Jobs created, read and watched on another", func(ctx context.Context) {
		// Discovery has fetched B's documents: through the proxy, the only
		// way A dials a peer.
		gomega.Eventually(ctx, func(g gomega.Gomega) {
			_, _, list, err := aggregatedAPIs(a, acceptAggregated)
			g.Expect(err).NotTo(gomega.HaveOccurred())
			g.Expect(versionFreshness(list, "batch", "v1")).To(gomega.Equal(apidiscoveryv2.DiscoveryFreshnessCurrent))
		}).WithTimeout(60 * time.Second).WithPolling(500 * time.Millisecond).Should(gomega.Succeed())
		beforeProxying, err := proxy.Connects(addrB)
		gomega.Expect(err).NotTo(gomega.HaveOccurred())
		gomega.Expect(beforeProxying).To(gomega.BeNumerically(">=", 1), "discovery's CONNECT to B's peer address %s in %s", addrB, proxy.LogPath)

		rerouted, err := metricSum(a, "apiserver_rerouted_request_total", `resource="jobs"`)
		gomega.Expect(err).NotTo(gomega.HaveOccurred())
		ca, cb := a.Client(), b.Client()
		_, err = ca.BatchV1().Jobs(ns).Create(ctx, newJob("through-egress"), metav1.CreateOptions{})
		gomega.Expect(err).NotTo(gomega.HaveOccurred())
		afterProxying, err := proxy.Connects(addrB)
		gomega.Expect(err).NotTo(gomega.HaveOccurred())
		gomega.Expect(afterProxying).To(gomega.BeNumerically(">", beforeProxying), "the proxied request's own CONNECT to %s", addrB)

		got, err := ca.BatchV1().Jobs(ns).Get(ctx, "through-egress", metav1.GetOptions{})
		gomega.Expect(err).NotTo(gomega.HaveOccurred())
		gomega.Expect(got.Name).To(gomega.Equal("through-egress"))

		w, err := ca.BatchV1().Jobs(ns).Watch(ctx, metav1.ListOptions{ResourceVersion: got.ResourceVersion})
		gomega.Expect(err).NotTo(gomega.HaveOccurred())
		defer w.Stop()
		_, err = cb.BatchV1().Jobs(ns).Create(ctx, newJob("watched-through-egress"), metav1.CreateOptions{})
		gomega.Expect(err).NotTo(gomega.HaveOccurred())
		select {
		case ev := <-w.ResultChan():
			gomega.Expect(ev.Type).To(gomega.Equal(watch.Added))
			gomega.Expect(ev.Object.(*batchv1.Job).Name).To(gomega.Equal("watched-through-egress"))
		case <-time.After(10 * time.Second):
			ginkgo.Fail("no watch event through the egress proxy within 10s")
		}

		now, err := metricSum(a, "apiserver_rerouted_request_total", `resource="jobs"`)
		gomega.Expect(err).NotTo(gomega.HaveOccurred())
		// The create and the get; the watch counts once it ends.
		gomega.Expect(now-rerouted).To(gomega.BeNumerically(">=", 2), "create and get were proxied")
		// Upstream's egress dialer counted the tunnels too.
		dials, err := metricSum(a, "apiserver_egress_dialer_dial_start_total", `protocol="http_connect"`, `transport="uds"`)
		gomega.Expect(err).NotTo(gomega.HaveOccurred())
		gomega.Expect(dials).To(gomega.BeNumerically(">=", 2))
		ginkgo.GinkgoWriter.Printf("tinyproxy's CONNECT lines for B (%s):\n  %s\n", addrB, strings.Join(proxy.ConnectLines(addrB), "\n  "))
	})

	ginkgo.It("answers 503 within 10s naming the egress proxy while it is down, and sends B nothing", func(ctx context.Context) {
		gomega.Expect(proxy.StopProxy()).To(gomega.Succeed())
		ginkgo.DeferCleanup(restore)
		before, err := metricSum(b, "apiserver_request_total", `resource="jobs"`)
		gomega.Expect(err).NotTo(gomega.HaveOccurred())

		start := time.Now()
		resp, body, err := adminGet(a, jobPath+"through-egress", nil)
		took := time.Since(start)
		gomega.Expect(err).NotTo(gomega.HaveOccurred())
		gomega.Expect(resp.StatusCode).To(gomega.Equal(503), string(body))
		gomega.Expect(took).To(gomega.BeNumerically("<=", 10*time.Second))
		gomega.Expect(resp.Header.Get("Retry-After")).NotTo(gomega.BeEmpty())
		gomega.Expect(string(body)).To(gomega.ContainSubstring("egress proxy (HTTPConnect proxy at unix socket " + proxy.Socket + ")"))
		ginkgo.GinkgoWriter.Printf("egress proxy down: %d in %s: %s\n", resp.StatusCode, took.Round(time.Millisecond), body)

		// Discovery fails the same way, and says so.
		discoveryFailsOnTheProxy(ctx)
		egressErrors, err := metricSum(a, "apiserver_peer_proxy_errors_total", `type="egress_proxy"`)
		gomega.Expect(err).NotTo(gomega.HaveOccurred())
		gomega.Expect(egressErrors).To(gomega.BeNumerically(">=", 1))

		after, err := metricSum(b, "apiserver_request_total", `resource="jobs"`)
		gomega.Expect(err).NotTo(gomega.HaveOccurred())
		gomega.Expect(after).To(gomega.Equal(before), "no request for jobs reached B while the egress proxy was down")
	})

	ginkgo.It("recovers without a restart once the egress proxy is back", func(ctx context.Context) {
		ensureJob(ctx, b.Client(), ns, "through-egress")
		// The egress proxy down first, and A's discovery failing on it.
		gomega.Expect(proxy.StopProxy()).To(gomega.Succeed())
		ginkgo.DeferCleanup(restore)
		discoveryFailsOnTheProxy(ctx)

		pid := a.PID()
		gomega.Expect(proxy.StartProxy(ctx)).To(gomega.Succeed())
		start := time.Now()
		gomega.Eventually(ctx, func(g gomega.Gomega) {
			resp, body, err := adminGet(a, jobPath+"through-egress", nil)
			g.Expect(err).NotTo(gomega.HaveOccurred())
			g.Expect(resp.StatusCode).To(gomega.Equal(200), string(body))
		}).WithTimeout(60 * time.Second).WithPolling(250 * time.Millisecond).Should(gomega.Succeed())
		proxied := time.Since(start)
		gomega.Eventually(ctx, func(g gomega.Gomega) {
			p, err := discoveryPeer(a, idB)
			g.Expect(err).NotTo(gomega.HaveOccurred())
			g.Expect(p.Fresh).To(gomega.BeTrue())
		}).WithTimeout(60 * time.Second).WithPolling(250 * time.Millisecond).Should(gomega.Succeed())
		gomega.Expect(a.Exited()).To(gomega.BeFalse())
		gomega.Expect(a.PID()).To(gomega.Equal(pid))
		ginkgo.GinkgoWriter.Printf("egress proxy back: proxied 200 after %s, discovery fresh after %s\n",
			proxied.Round(time.Millisecond), time.Since(start).Round(time.Millisecond))
	})

	ginkgo.It("holds goroutines and file descriptors flat under steady load while the egress proxy is frozen (SIGSTOP), and recovers", func(ctx context.Context) {
		load := freezeLoad()
		ensureJob(ctx, b.Client(), ns, "through-egress")
		// One client for all requests: a client per request would leave A a
		// connection per request, and that is not what is measured.
		client := a.HTTPClient()
		samples := func() (goroutines, fds int) {
			code, body, err := do(client, a.URL+"/debug/pprof/goroutine?debug=1", nil)
			gomega.Expect(err).NotTo(gomega.HaveOccurred())
			gomega.Expect(code).To(gomega.Equal(200), body)
			_, err = fmt.Sscanf(body, "goroutine profile: total %d", &goroutines)
			gomega.Expect(err).NotTo(gomega.HaveOccurred(), "%.80s", body)
			entries, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", a.PID()))
			gomega.Expect(err).NotTo(gomega.HaveOccurred())
			return goroutines, len(entries)
		}
		g0, f0 := samples()
		gomega.Expect(proxy.Freeze()).To(gomega.Succeed())
		ginkgo.DeferCleanup(restore)

		// 10 GETs a second through A, each answered on its own; a sample of
		// A's goroutines and descriptors every 10s.
		gets := startProbeWith(client, a.URL+jobPath+"through-egress")
		type sample struct {
			at              time.Duration
			goroutines, fds int
		}
		var series []sample
		start := time.Now()
		for time.Since(start) < load {
			select {
			case <-ctx.Done():
				ginkgo.Fail("interrupted")
			case <-time.After(10 * time.Second):
			}
			g, f := samples()
			series = append(series, sample{time.Since(start).Round(time.Second), g, f})
		}
		// Every request sent gets its answer, none past the proxy's bound.
		answered := answers(gets.stop())
		codes, latencies := answered.codes(), answered.latencies()
		n, slowest := len(latencies), latencies[len(latencies)-1]
		ginkgo.GinkgoWriter.Printf("egress proxy frozen for %s under load: %d requests, answers by code %v, latency p50 %s p99 %s max %s\n", load, n, codes,
			latencies[len(latencies)/2].Round(time.Millisecond), latencies[len(latencies)*99/100].Round(time.Millisecond), slowest.Round(time.Millisecond))
		ginkgo.GinkgoWriter.Printf("A before the freeze: %d goroutines, %d open fds; every 10s:\n", g0, f0)
		for _, s := range series {
			ginkgo.GinkgoWriter.Printf("  %5s  goroutines %d  fds %d\n", s.at, s.goroutines, s.fds)
		}
		gomega.Expect(codes[0]).To(gomega.BeZero(), "requests without an answer")
		gomega.Expect(codes[503]).To(gomega.BeNumerically(">", n/2), "answers while frozen")
		gomega.Expect(slowest).To(gomega.BeNumerically("<", 10*time.Second))
		// Flat: after the first sample (the bounded dials are taken by
		// then), neither count grows with the requests sent.
		base := series[0]
		for _, s := range series[1:] {
			gomega.Expect(s.goroutines-base.goroutines).To(gomega.BeNumerically("<=", 40), "goroutines at %s", s.at)
			gomega.Expect(s.fds-base.fds).To(gomega.BeNumerically("<=", 10), "fds at %s", s.at)
		}

		gomega.Expect(proxy.Thaw()).To(gomega.Succeed())
		gomega.Eventually(ctx, func(g gomega.Gomega) {
			resp, body, err := adminGet(a, jobPath+"through-egress", nil)
			g.Expect(err).NotTo(gomega.HaveOccurred())
			g.Expect(resp.StatusCode).To(gomega.Equal(200), string(body))
		}).WithTimeout(60 * time.Second).WithPolling(250 * time.Millisecond).Should(gomega.Succeed())
		g1, f1 := samples()
		ginkgo.GinkgoWriter.Printf("after the thaw, proxying again: %d goroutines, %d open fds\n", g1, f1)
	})

	ginkgo.It("fails over through the proxy to another peer when the proxy cannot reach a killed one: 20 of 20 answered", func(ctx context.Context) {
		ensureJob(ctx, b.Client(), ns, "through-egress")
		c, err := cluster.StartServer(ctx, harness.ServerOptions{Name: "eg-c", IP: "127.0.0.76"})
		gomega.Expect(err).NotTo(gomega.HaveOccurred())
		ginkgo.DeferCleanup(func() { c.Stop(30 * time.Second) })
		idC, err := c.ID(ctx)
		gomega.Expect(err).NotTo(gomega.HaveOccurred())
		waitRoute(ctx, a, idB, idC)
		addrC := net.JoinHostPort(c.Opts.IP, strconv.Itoa(c.Opts.Port))

		ginkgo.DeferCleanup(restore)
		b.Kill() // its lease stays live for up to 30 s: A still routes to it
		gomega.Expect(answered(a, jobPath+"through-egress", 20)).To(gomega.Equal(20))

		// The proxy could not reach B and said so; A went on to C, through the proxy too.
		log, err := os.ReadFile(proxy.LogPath)
		gomega.Expect(err).NotTo(gomega.HaveOccurred())
		gomega.Expect(string(log)).To(gomega.ContainSubstring("Could not establish a connection to " + addrB))
		connectsC, err := proxy.Connects(addrC)
		gomega.Expect(err).NotTo(gomega.HaveOccurred())
		gomega.Expect(connectsC).To(gomega.BeNumerically(">=", 1))
		d, err := debugDocument(a)
		gomega.Expect(err).NotTo(gomega.HaveOccurred())
		gomega.Expect(d.Peers).To(gomega.ContainElement(gomega.And(
			gomega.HaveField("ID", idB), gomega.HaveField("LastError", gomega.ContainSubstring("egress proxy")))))
		ginkgo.GinkgoWriter.Printf("tinyproxy on the killed peer: %s\n", strings.Join(harness.LogLines(proxy.LogPath, "Could not establish a connection to "+addrB), " | "))
	})

	ginkgo.It("refuses a plain http:// HTTPConnect selection at start-up, naming the file and field, where upstream's binary crashes", func(ctx context.Context) {
		upstream := filepath.Join(binDir, "kube-apiserver-upstream")
		_, err := os.Stat(upstream)
		gomega.Expect(err).NotTo(gomega.HaveOccurred(), "run `make build` first")
		config := writeEgressConfig(filepath.Join(workDir, "egress"), "egress-plain-http.yaml",
			"    proxyProtocol: HTTPConnect\n    transport:\n      tcp:\n        url: http://"+proxy.Addr+"\n")

		ours, err := cluster.LaunchServer(harness.ServerOptions{Name: "eg-plain-ours", IP: "127.0.0.74",
			Args: []string{"--egress-selector-config-file=" + config}})
		gomega.Expect(err).NotTo(gomega.HaveOccurred())
		gomega.Expect(ours.Wait(2*time.Minute)).To(gomega.Succeed(), "our server should refuse to start")
		gomega.Expect(ours.ExitError()).To(gomega.HaveOccurred())
		log, _ := os.ReadFile(ours.LogPath)
		gomega.Expect(string(log)).To(gomega.ContainSubstring("--egress-selector-config-file=" + config))
		gomega.Expect(string(log)).To(gomega.ContainSubstring("egressSelections[0]"))
		gomega.Expect(string(log)).To(gomega.ContainSubstring("connection.transport.tcp.url"))
		gomega.Expect(string(log)).To(gomega.ContainSubstring("http://" + proxy.Addr))
		gomega.Expect(string(log)).NotTo(gomega.ContainSubstring("panic"))
		ginkgo.GinkgoWriter.Printf("ours: %s\n", ours.LogTail(1))

		vanilla, err := cluster.LaunchServer(harness.ServerOptions{Name: "eg-plain-upstream", IP: "127.0.0.75", Binary: upstream,
			Args: []string{"--egress-selector-config-file=" + config}})
		gomega.Expect(err).NotTo(gomega.HaveOccurred())
		gomega.Expect(vanilla.Wait(2 * time.Minute)).To(gomega.Succeed())
		log, _ = os.ReadFile(vanilla.LogPath)
		gomega.Expect(string(log)).To(gomega.ContainSubstring("nil pointer dereference"), "upstream v1.37.2 crashes on this file")
		ginkgo.GinkgoWriter.Printf("upstream: %s\n", strings.Join(harness.LogLines(vanilla.LogPath, "panic"), " | "))
	})
})
