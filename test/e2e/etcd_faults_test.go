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
	"time"

	"github.com/onsi/ginkgo/v2"
	"github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/mvp-apiserver/kube-apiserver/test/e2e/harness"
)

// etcdReadyBound is how soon after losing an etcd member (of three)
// every server must answer /readyz ok again.
const etcdReadyBound = 30 * time.Second

var _ = ginkgo.Describe("[Feature:MixedVersionProxy] etcd members lost under load", ginkgo.Ordered, ginkgo.Label(labelHarness), func() {
	const ns = "etcd-faults"

	ginkgo.It("answers no false 404, is ready again within 30s and loses no write when a follower and then the leader of three etcd members are killed", func(ctx context.Context) {
		cl, err := harness.NewClusterWith(ctx, binDir, filepath.Join(workDir, "etcd-faults"), harness.ClusterOptions{EtcdMembers: 3})
		gomega.Expect(err).NotTo(gomega.HaveOccurred())
		ginkgo.DeferCleanup(cl.Stop)
		servers := startAllIn(ctx, cl,
			harness.ServerOptions{Name: "ef-a", IP: "127.0.0.131", Args: []string{"--runtime-config=batch/v1=false"}},
			harness.ServerOptions{Name: "ef-b", IP: "127.0.0.132"},
		)
		a, b := servers[0], servers[1]
		_, err = b.Client().CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{})
		gomega.Expect(err).NotTo(gomega.HaveOccurred())
		ensureJob(ctx, b.Client(), ns, "probe")
		jobPath := "/apis/batch/v1/namespaces/" + ns + "/jobs/probe"
		gomega.Eventually(ctx, func() int { return answered(a, jobPath, 1) }).WithTimeout(time.Minute).WithPolling(500 * time.Millisecond).Should(gomega.Equal(1))

		reads := startProbe(a, jobPath)
		created := createJobs(ctx, []kubernetes.Interface{a.Client(), b.Client()}, ns, "ef-")
		for _, role := range []string{"follower", "leader"} {
			m := etcdMember(ctx, cl.Etcd, role == "leader")
			m.Kill()
			killed := time.Now()
			ready := readyAgain(ctx, killed, a, b)
			ginkgo.GinkgoWriter.Printf("etcd %s %s killed: both servers ready %s after\n", role, m.Name, ready.Round(time.Millisecond))
			gomega.Expect(ready).To(gomega.BeNumerically("<=", etcdReadyBound), "ready again after the %s was killed", role)
			harness.Pause(ctx, 10*time.Second) // load on two members
			gomega.Expect(cl.Etcd.Restart(ctx, m)).To(gomega.Succeed(), "etcd %s started again", m.Name)
		}
		names := created()
		all := answers(reads.stop())
		ginkgo.GinkgoWriter.Printf("through A while etcd members were lost: %s; %d Jobs created\n", all, len(names))
		all.expectNone(404)
		gomega.Expect(names).NotTo(gomega.BeEmpty())
		gomega.Expect(storedJobs(ctx, b, ns, "ef-")).To(gomega.ContainElements(names), "every Job whose creation was answered is stored")
	})
})

// etcdMember is the running leader, or a running member that is not it.
func etcdMember(ctx context.Context, e *harness.Etcd, leader bool) *harness.EtcdMember {
	var l *harness.EtcdMember
	gomega.Eventually(ctx, func() error {
		var err error
		l, err = e.Leader(ctx)
		return err
	}).WithTimeout(30 * time.Second).WithPolling(200 * time.Millisecond).Should(gomega.Succeed())
	if leader {
		return l
	}
	for _, m := range e.Members {
		if m != l && !m.Exited() {
			return m
		}
	}
	ginkgo.Fail("no running follower")
	return nil
}

// readyAgain waits until every server answers /readyz ok, and says how
// long after since that was.
func readyAgain(ctx context.Context, since time.Time, servers ...*harness.Server) time.Duration {
	for _, s := range servers {
		gomega.Expect(s.WaitReady(ctx, 2*time.Minute)).To(gomega.Succeed(), "%s ready", s.Opts.Name)
	}
	return time.Since(since)
}
