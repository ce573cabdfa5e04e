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
	ginkgo.It("answers no false 404, is ready again within 30s and loses no write when a follower and then the leader of three etcd members are killed; upstream's proxy beside it", func(ctx context.Context) {
		ours := loseEtcdMembers(ctx, "etcd-faults", "", "ef", "127.0.0.131", "127.0.0.132")
		vanilla := loseEtcdMembers(ctx, "etcd-faults-upstream", filepath.Join(binDir, "kube-apiserver-upstream"), "eu", "127.0.0.133", "127.0.0.134")
		for _, r := range []struct {
			who string
			etcdLoss
		}{{"ours", ours}, {"upstream v1.37.2", vanilla}} {
			ginkgo.GinkgoWriter.Printf("%s: both servers ready %s after the follower was killed, %s after the leader; through A %s; %d Jobs created, %d of them not stored\n",
				r.who, r.ready[0].Round(time.Millisecond), r.ready[1].Round(time.Millisecond), r.reads, len(r.created), len(r.lost))
		}
		for i, role := range []string{"follower", "leader"} {
			gomega.Expect(ours.ready[i]).To(gomega.BeNumerically("<=", etcdReadyBound), "ready again after the %s was killed", role)
		}
		ours.reads.expectNone(404)
		gomega.Expect(ours.created).NotTo(gomega.BeEmpty())
		gomega.Expect(ours.lost).To(gomega.BeEmpty(), "every Job whose creation was answered is stored")
	})
})

// etcdLoss is what one run of loseEtcdMembers saw.
type etcdLoss struct {
	// ready: how long after the follower's and then the leader's kill
	// both servers were ready.
	ready []time.Duration
	// reads: the GETs of a Job through A (which lacks batch/v1).
	reads answers
	// created: the Jobs whose creation was answered; lost: those of them
	// not stored at the end.
	created, lost []string
}

// loseEtcdMembers starts a cluster on three etcd members with A (binary,
// our kube-apiserver when empty, without batch/v1) and B; under a GET of a
// Job through A every 100 ms and a Job created every 100 ms, it kills a
// follower and then the leader, each started again 10 s later.
func loseEtcdMembers(ctx context.Context, dir, binary, prefix, ipA, ipB string) etcdLoss {
	const ns = "etcd-faults"
	cl, err := harness.NewClusterWith(ctx, binDir, filepath.Join(workDir, dir), harness.ClusterOptions{EtcdMembers: 3})
	gomega.Expect(err).NotTo(gomega.HaveOccurred())
	defer cl.Stop()
	servers := startAllIn(ctx, cl,
		harness.ServerOptions{Name: prefix + "-a", IP: ipA, Binary: binary, Args: []string{"--runtime-config=batch/v1=false"}},
		harness.ServerOptions{Name: prefix + "-b", IP: ipB, Binary: binary},
	)
	a, b := servers[0], servers[1]
	defer func() { a.Stop(30 * time.Second); b.Stop(30 * time.Second) }()
	_, err = b.Client().CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{})
	gomega.Expect(err).NotTo(gomega.HaveOccurred())
	ensureJob(ctx, b.Client(), ns, "probe")
	jobPath := "/apis/batch/v1/namespaces/" + ns + "/jobs/probe"
	gomega.Eventually(ctx, func() int { return answered(a, jobPath, 1) }).WithTimeout(time.Minute).WithPolling(500*time.Millisecond).Should(gomega.Equal(1), "%s proxies Jobs", a.Opts.Name)

	var r etcdLoss
	reads := startProbe(a, jobPath)
	created := createJobs(ctx, []kubernetes.Interface{a.Client(), b.Client()}, ns, prefix+"-")
	for _, leader := range []bool{false, true} {
		m := etcdMember(ctx, cl.Etcd, leader)
		m.Kill()
		r.ready = append(r.ready, readyAgain(ctx, time.Now(), a, b))
		harness.Pause(ctx, 10*time.Second) // load on two members
		gomega.Expect(cl.Etcd.Restart(ctx, m)).To(gomega.Succeed(), "etcd %s started again", m.Name)
	}
	r.created, r.reads = created(), answers(reads.stop())
	stored := map[string]bool{}
	for _, n := range storedJobs(ctx, b, ns, prefix+"-") {
		stored[n] = true
	}
	for _, n := range r.created {
		if !stored[n] {
			r.lost = append(r.lost, n)
		}
	}
	return r
}

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
