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
	"path/filepath"
	"strconv"
	"time"

	"github.com/onsi/ginkgo/v2"
	"github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/mvp-apiserver/kube-apiserver/test/e2e/harness"
)

// Bounds for the peer network's faults: a request fails over, or is
// answered 503, within failBound; proxying is back within healBound of
// the network healing.
const (
	failBound = 10 * time.Second
	healBound = 5 * time.Second
	// faultHold is how long each fault lasts under load.
	faultHold = 15 * time.Second
)

// The cluster: clients and etcd on the client network, peer traffic on the
// peer network. A is ours without batch/v1, so Jobs through it are
// proxied to B, C (ours) or V (vanilla v1.36.3); V lacks
// storagemigration.k8s.io/v1, so its own peer proxy sends those through
// the same faults to A, B or C, side by side.
var _ = ginkgo.Describe("[Feature:MixedVersionProxy] faults on the peer network", ginkgo.Ordered, ginkgo.ContinueOnFailure, ginkgo.Label(labelHarness), func() {
	const ns = "net-faults"
	var a, v *harness.Server
	var hosts map[string]*harness.Host
	jobPath := "/apis/batch/v1/namespaces/" + ns + "/jobs/probe"
	svmPath := "/apis/storagemigration.k8s.io/v1/storageversionmigrations/nf-probe"

	ginkgo.BeforeAll(func(ctx context.Context) {
		network, err := harness.NewNetwork(ctx, "mvpnf-")
		gomega.Expect(err).NotTo(gomega.HaveOccurred())
		ginkgo.DeferCleanup(func(ctx context.Context) { gomega.Expect(network.Close(ctx)).To(gomega.Succeed()) })
		cl, err := harness.NewClusterWith(ctx, binDir, filepath.Join(workDir, "net-faults"), harness.ClusterOptions{Network: network})
		gomega.Expect(err).NotTo(gomega.HaveOccurred())
		ginkgo.DeferCleanup(cl.Stop) // before the network goes: cleanups run last first
		hosts = map[string]*harness.Host{}
		for i, name := range []string{"a", "b", "c", "v"} {
			n := strconv.Itoa(11 + i)
			hosts[name], err = network.AddHost(ctx, name, harness.ClientNet+n, harness.PeerNet+n)
			gomega.Expect(err).NotTo(gomega.HaveOccurred())
		}
		servers := startAllIn(ctx, cl,
			harness.ServerOptions{Name: "nf-a", Host: hosts["a"], Args: []string{"--runtime-config=batch/v1=false"}},
			harness.ServerOptions{Name: "nf-b", Host: hosts["b"]},
			harness.ServerOptions{Name: "nf-c", Host: hosts["c"]},
			// Vanilla v1.36.3 takes no address from --peer-advertise-ip: it
			// publishes its advertise address, so that is its peer address.
			harness.ServerOptions{Name: "nf-v", Host: hosts["v"], Binary: filepath.Join(binDir, "kube-apiserver-previous"),
				Args: []string{"--advertise-address=" + hosts["v"].PeerIP}},
		)
		a, v = servers[0], servers[3]
		b := servers[1].Client()
		_, err = b.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{})
		gomega.Expect(err).NotTo(gomega.HaveOccurred())
		ensureJob(ctx, b, ns, "probe")
		_, err = b.StoragemigrationV1().StorageVersionMigrations().Create(ctx, newMigration("nf-probe"), metav1.CreateOptions{})
		gomega.Expect(err).NotTo(gomega.HaveOccurred())
		healed(ctx, a, jobPath, v, svmPath)
	})

	links := func(ctx context.Context, up bool, names ...string) {
		for _, n := range names {
			gomega.Expect(hosts[n].PeerLink(ctx, up)).To(gomega.Succeed(), "%s's peer link up=%t", n, up)
		}
	}

	ginkgo.It("fails over within 10s each while one peer's link is down", func(ctx context.Context) {
		ours, theirs := startProbe(a, jobPath), startProbe(v, svmPath)
		from := time.Now()
		links(ctx, false, "b")
		harness.Pause(ctx, faultHold)
		to := time.Now()
		links(ctx, true, "b")
		o, t := window(ours.stop(), from, to), window(theirs.stop(), from, to)
		report("B's peer link down", o, t)
		o.expectAll(200, failBound)
		healed(ctx, a, jobPath, v, svmPath)
	})

	ginkgo.It("fails over within 10s each while one direction of a peer's link is blocked", func(ctx context.Context) {
		ours, theirs := startProbe(a, jobPath), startProbe(v, svmPath)
		from := time.Now()
		// B hears A and V but its packets to them are dropped.
		gomega.Expect(hosts["b"].BlockTo(ctx, hosts["a"])).To(gomega.Succeed())
		gomega.Expect(hosts["b"].BlockTo(ctx, hosts["v"])).To(gomega.Succeed())
		harness.Pause(ctx, faultHold)
		to := time.Now()
		gomega.Expect(hosts["b"].UnblockTo(ctx, hosts["a"])).To(gomega.Succeed())
		gomega.Expect(hosts["b"].UnblockTo(ctx, hosts["v"])).To(gomega.Succeed())
		o, t := window(ours.stop(), from, to), window(theirs.stop(), from, to)
		report("B to A and V blocked, A and V to B open", o, t)
		o.expectAll(200, failBound)
		healed(ctx, a, jobPath, v, svmPath)
	})

	ginkgo.It("answers 503 within 10s, never 404 or a hang, with every peer's link down, and proxies again within 5s of the heal", func(ctx context.Context) {
		wa, wv := newWatcher(a, "/apis/batch/v1/namespaces/"+ns+"/jobs"), newWatcher(v, "/apis/storagemigration.k8s.io/v1/storageversionmigrations")
		wctx, stopWatch := context.WithCancel(ctx)
		defer stopWatch()
		for _, w := range []*harness.Watcher{wa, wv} {
			go w.Run(wctx)
			watching(ctx, w, 1)
		}
		ours, theirs := startProbe(a, jobPath), startProbe(v, svmPath)
		from := time.Now()
		links(ctx, false, "a", "b", "c", "v")
		harness.Pause(ctx, faultHold)
		healedAt := time.Now()
		links(ctx, true, "a", "b", "c", "v")
		harness.Pause(ctx, faultHold)
		oAll, tAll := ours.stop(), theirs.stop()
		o, t := window(oAll, from, healedAt), window(tAll, from, healedAt)
		report("every peer link down", o, t)
		oBack, tBack := backAfter(oAll, healedAt), backAfter(tAll, healedAt)
		ginkgo.GinkgoWriter.Printf("after the heal: through A (ours) every answer 200 from %s on; through V (vanilla v1.36.3) from %s on\n", describeBack(oBack), describeBack(tBack))

		endA, howA := endsWithin(ctx, wa, 1, from)
		ginkgo.GinkgoWriter.Printf("cut off: the watch through A (ours) ended %s after the links went down (%s)\n", endA.Round(time.Millisecond), howA)
		if st := wv.State(); len(st.Ends) > 0 && st.Ends[0].Before(healedAt) {
			ginkgo.GinkgoWriter.Printf("cut off: the watch through V (vanilla v1.36.3) ended %s after the links went down (%s)\n", st.Ends[0].Sub(from).Round(time.Millisecond), st.EndErrs[0])
		} else {
			ginkgo.GinkgoWriter.Printf("cut off: the watch through V (vanilla v1.36.3) was still open when the links came back, %s later\n", healedAt.Sub(from).Round(time.Millisecond))
		}

		o.expectNone(404)
		o.expectNone(0)
		o.expectWithin(failBound)
		// Every answer that came before the heal is a 503: no peer was
		// reachable. One still trying a peer at the heal may get a 200.
		o.answeredBefore(healedAt).expectAll(503, failBound)
		gomega.Expect(endA).To(gomega.BeNumerically("<=", watchEndBound), "the proxied watch ends once its peer is cut off")
		gomega.Expect(oBack).To(gomega.BeNumerically("<=", healBound), "proxying again after the heal")
	})
})

// healed waits until a answers 200 for aPath and v for vPath.
func healed(ctx context.Context, a *harness.Server, aPath string, v *harness.Server, vPath string) {
	for _, c := range []struct {
		s    *harness.Server
		path string
	}{{a, aPath}, {v, vPath}} {
		gomega.Eventually(ctx, func() (int, error) {
			code, _, err := do(c.s.HTTPClient(), c.s.URL+c.path, nil)
			return code, err
		}).WithTimeout(2*time.Minute).WithPolling(500*time.Millisecond).Should(gomega.Equal(200), "%s %s", c.s.Opts.Name, c.path)
	}
}
