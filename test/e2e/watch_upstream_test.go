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

	"github.com/mvp-apiserver/kube-apiserver/test/e2e/harness"
)

// upstreamWatchWait is how long the upstream spec waits for a proxied
// watch to end before it reports the watch still open.
const upstreamWatchWait = 20 * time.Second

// endsBy is how long after fault w's stream number n ended and how, or
// ended false when it was still open limit after fault.
func endsBy(ctx context.Context, w *harness.Watcher, n int, fault time.Time, limit time.Duration) (took time.Duration, how string, ended bool) {
	for time.Since(fault) < limit && ctx.Err() == nil {
		if st := w.State(); len(st.Ends) >= n {
			return st.Ends[n-1].Sub(fault), st.EndErrs[n-1], true
		}
		harness.Pause(ctx, 50*time.Millisecond)
	}
	return limit, "", false
}

func describeEnd(took time.Duration, how string, ended bool) string {
	if !ended {
		return "still open " + took.String() + " later"
	}
	return "ended " + took.Round(time.Millisecond).String() + " later (" + how + ")"
}

// The faults of "proxied watches across faults" through upstream's own
// proxy (vanilla v1.37.2, the same module as ours), so docs/proxy.md can
// put both side by side from one run. Upstream's figures are printed;
// what is asserted is that its proxy did proxy each watch.
var _ = ginkgo.Describe("[Feature:MixedVersionProxy] proxied watches across faults through upstream's proxy", ginkgo.Ordered, ginkgo.Label(labelHarness), func() {
	const ns = "watch-upstream"
	jobsPath := "/apis/batch/v1/namespaces/" + ns + "/jobs"

	ginkgo.It("reports when vanilla v1.37.2 ends a proxied watch after its peer froze, was killed, and after its own stop", func(ctx context.Context) {
		c := ownCluster(ctx, "watch-upstream")
		upstream := filepath.Join(binDir, "kube-apiserver-upstream")
		servers := startAllIn(ctx, c,
			harness.ServerOptions{Name: "wu-a", IP: "127.0.0.161", Binary: upstream, Args: []string{"--runtime-config=batch/v1=false"}},
			harness.ServerOptions{Name: "wu-b", IP: "127.0.0.162", Binary: upstream},
		)
		a, b := servers[0], servers[1]
		ginkgo.DeferCleanup(func() { a.Stop(30 * time.Second); b.Stop(30 * time.Second) })
		_, err := b.Client().CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{})
		gomega.Expect(err).NotTo(gomega.HaveOccurred())
		ensureJob(ctx, b.Client(), ns, "watched")
		// Upstream's proxy learns B's resources from B's discovery.
		gomega.Eventually(ctx, func(g gomega.Gomega) {
			resp, body, err := adminGet(a, jobsPath+"/watched", nil)
			g.Expect(err).NotTo(gomega.HaveOccurred())
			g.Expect(resp.StatusCode).To(gomega.Equal(200), string(body))
		}).WithTimeout(90 * time.Second).WithPolling(500 * time.Millisecond).Should(gomega.Succeed())

		w := newWatcher(a, jobsPath)
		wctx, stop := context.WithCancel(ctx)
		defer stop()
		go w.Run(wctx)
		// open is the number of the stream open now, once one is.
		open := func() int {
			st := w.State()
			if len(st.Ends) < st.Opened {
				return st.Opened
			}
			watching(ctx, w, st.Opened+1)
			return st.Opened + 1
		}

		n := open()
		gomega.Expect(b.Freeze()).To(gomega.Succeed())
		frozen := time.Now()
		took, how, ended := endsBy(ctx, w, n, frozen, upstreamWatchWait)
		ginkgo.GinkgoWriter.Printf("upstream v1.37.2, peer frozen (SIGSTOP): the proxied watch %s\n", describeEnd(took, how, ended))
		gomega.Expect(b.Thaw()).To(gomega.Succeed())
		gomega.Expect(b.WaitReady(ctx, 2*time.Minute)).To(gomega.Succeed())

		n = open()
		killed := time.Now()
		b.Kill()
		took, how, ended = endsBy(ctx, w, n, killed, upstreamWatchWait)
		ginkgo.GinkgoWriter.Printf("upstream v1.37.2, peer killed (SIGKILL): the proxied watch %s\n", describeEnd(took, how, ended))
		b, err = b.Restart(ctx)
		gomega.Expect(err).NotTo(gomega.HaveOccurred())

		n = open()
		began := time.Now()
		stopped := make(chan error, 1)
		go func() { stopped <- a.Stop(time.Minute) }()
		took, how, ended = endsBy(ctx, w, n, began, upstreamWatchWait)
		exit := "exited after " + time.Since(began).Round(time.Millisecond).String()
		if err := <-stopped; err != nil {
			exit = err.Error() + "; killed"
			a.Kill()
		}
		ginkgo.GinkgoWriter.Printf("upstream v1.37.2, server stopped (SIGTERM): its proxied watch %s; the process %s\n", describeEnd(took, how, ended), exit)
	})
})
