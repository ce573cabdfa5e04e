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
	"path/filepath"
	"time"

	"github.com/onsi/ginkgo/v2"
	"github.com/onsi/gomega"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/mvp-apiserver/kube-apiserver/test/e2e/harness"
)

// svmAnswer is the code a server answers for the StorageVersionMigration
// name, or "down" when it does not answer.
func svmAnswer(ctx context.Context, s *harness.Server, name string) string {
	resp, body, err := adminGet(s, "/apis/storagemigration.k8s.io/v1/storageversionmigrations/"+name, nil)
	if err != nil {
		return "down"
	}
	if resp.StatusCode != 200 {
		ginkgo.GinkgoWriter.Printf("    %s: %d %.200s\n", s.Opts.Name, resp.StatusCode, body)
	}
	return fmt.Sprint(resp.StatusCode)
}

// sample asks s n times for the StorageVersionMigration and counts the answers.
func sample(ctx context.Context, s *harness.Server, name string, n int) map[string]int {
	got := map[string]int{}
	for range n {
		got[svmAnswer(ctx, s, name)]++
	}
	return got
}

var _ = ginkgo.Describe("[Feature:MixedVersionProxy] rollback to vanilla v1.36.3", ginkgo.Label(labelHarness), func() {
	ginkgo.It("answers 503 or the normal 404 for storagemigration.k8s.io/v1 objects left in etcd, and collects a departed server's lease after the window", func(ctx context.Context) {
		const retention = 15 * time.Second
		previous := filepath.Join(binDir, "kube-apiserver-previous")
		retain := []string{"MVP_PEER_RETENTION=" + retention.String()}
		c := ownCluster(ctx, "rollback")
		servers := startAllIn(ctx, c,
			harness.ServerOptions{Name: "rb-a", IP: "127.0.0.111", Env: retain},
			harness.ServerOptions{Name: "rb-b", IP: "127.0.0.112", Binary: previous},
		)
		a, b := servers[0], servers[1]
		ginkgo.DeferCleanup(func() {
			for _, s := range []*harness.Server{a, b} {
				s.Stop(30 * time.Second)
			}
		})
		const name = "rollback-configmaps"
		_, err := a.Client().StoragemigrationV1().StorageVersionMigrations().Create(ctx, newMigration(name), metav1.CreateOptions{})
		gomega.Expect(err).NotTo(gomega.HaveOccurred())
		// proxied waits until rb-b proxies to ours, and keeps doing so for
		// 2 s: by then it has fetched ours' discovery again for the holder
		// ours set once ready (a stop racing that fetch is another case).
		proxied := func() {
			gomega.Eventually(ctx, func() string { return svmAnswer(ctx, b, name) }).
				WithTimeout(60*time.Second).WithPolling(250*time.Millisecond).Should(gomega.Equal("200"), "vanilla rb-b proxies to ours")
			gomega.Consistently(ctx, func() string { return svmAnswer(ctx, b, name) }).
				WithTimeout(2 * time.Second).WithPolling(100 * time.Millisecond).Should(gomega.Equal("200"))
		}
		proxied()

		// In place: rb-a goes back to vanilla v1.36.3. While it is down,
		// rb-b routes to the lease ours kept: 503, or 404 once a rebuild of
		// its peer cache dropped the unreachable peer.
		gomega.Expect(a.Stop(time.Minute)).To(gomega.Succeed())
		got := sample(ctx, b, name, 20)
		ginkgo.GinkgoWriter.Printf("  rb-a stopped: rb-b answers %v\n", got)
		for code := range got {
			gomega.Expect(code).To(gomega.BeElementOf("503", "404"))
		}
		a, err = c.StartServer(ctx, harness.ServerOptions{Name: "rb-a", IP: a.Opts.IP, Port: a.Opts.Port, Binary: previous})
		gomega.Expect(err).NotTo(gomega.HaveOccurred())
		// Vanilla's start on rb-a replaces the lease ours kept there: both
		// answer what vanilla v1.36.3 answers for an API it lacks.
		for _, s := range []*harness.Server{a, b} {
			gomega.Eventually(ctx, func() string { return svmAnswer(ctx, s, name) }).
				WithTimeout(60*time.Second).WithPolling(500*time.Millisecond).Should(gomega.Equal("404"), "%s after the rollback in place", s.Opts.Name)
		}

		// For good: a server of ours on another node leaves and never comes
		// back. Its kept lease lasts the retention window; vanilla's lease
		// collector deletes it when it next runs after that (hourly, and at
		// every start of a vanilla server).
		gone, err := c.StartServer(ctx, harness.ServerOptions{Name: "rb-c", IP: "127.0.0.113", Env: retain})
		gomega.Expect(err).NotTo(gomega.HaveOccurred())
		ginkgo.DeferCleanup(func() { gone.Stop(30 * time.Second) })
		proxied()
		goneID, err := gone.ID(ctx)
		gomega.Expect(err).NotTo(gomega.HaveOccurred())
		gomega.Expect(gone.Stop(time.Minute)).To(gomega.Succeed())
		lease, err := b.Client().CoordinationV1().Leases(metav1.NamespaceSystem).Get(ctx, goneID, metav1.GetOptions{})
		gomega.Expect(err).NotTo(gomega.HaveOccurred(), "rb-c's lease is kept across its stop")
		gomega.Expect(lease.Annotations).To(gomega.HaveKey("mvp-apiserver.github.io/stopped-at"))
		gomega.Expect(*lease.Spec.LeaseDurationSeconds).To(gomega.BeEquivalentTo(retention.Seconds()), "the kept lease lasts the retention window")
		expires := lease.Spec.RenewTime.Add(retention)
		gomega.Eventually(ctx, time.Now).WithTimeout(retention+10*time.Second).WithPolling(time.Second).
			Should(gomega.BeTemporally(">", expires), "waiting for rb-c's lease to expire")
		b, err = b.Restart(ctx)
		gomega.Expect(err).NotTo(gomega.HaveOccurred())
		gomega.Eventually(ctx, func() bool {
			_, err := b.Client().CoordinationV1().Leases(metav1.NamespaceSystem).Get(ctx, goneID, metav1.GetOptions{})
			return apierrors.IsNotFound(err)
		}).WithTimeout(60*time.Second).WithPolling(500*time.Millisecond).Should(gomega.BeTrue(), "vanilla's collector deleted rb-c's expired lease")
		gomega.Eventually(ctx, func() string { return svmAnswer(ctx, b, name) }).
			WithTimeout(60 * time.Second).WithPolling(500 * time.Millisecond).Should(gomega.Equal("404"))
	})
})
