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
	"strings"
	"sync"
	"time"

	"github.com/onsi/ginkgo/v2"
	"github.com/onsi/gomega"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/mvp-apiserver/kube-apiserver/test/e2e/harness"
)

// The longest a proxied watch may outlive the peer serving it.
const watchEndBound = 5 * time.Second

var _ = ginkgo.Describe("[Feature:MixedVersionProxy] proxied watches across faults", ginkgo.Ordered, ginkgo.ContinueOnFailure, ginkgo.Label(labelHarness), func() {
	const ns = "watch-faults"
	var a, b *harness.Server
	var idB string
	jobsPath := "/apis/batch/v1/namespaces/" + ns + "/jobs"

	ginkgo.BeforeAll(func(ctx context.Context) {
		a, b, idB = startProxyPair(ctx, harness.ServerOptions{Name: "wf-a", IP: "127.0.0.121"}, harness.ServerOptions{Name: "wf-b", IP: "127.0.0.122"}, ns)
		// a and b, not the ones started here: a spec may have replaced them.
		ginkgo.DeferCleanup(func() { a.Stop(30 * time.Second); b.Stop(30 * time.Second) })
		ensureJob(ctx, b.Client(), ns, "watched")
	})
	restoreB := func(ctx context.Context) { b, idB = restoreProxied(ctx, a, b, jobsPath+"/") }

	ginkgo.It("ends a proxied watch within 5s when the peer serving it freezes or is killed, for a client that does not ping", func(ctx context.Context) {
		w := newWatcher(a, jobsPath)
		wctx, stop := context.WithCancel(ctx)
		defer stop()
		go w.Run(wctx)
		watching(ctx, w, 1)

		gomega.Expect(b.Freeze()).To(gomega.Succeed())
		frozen := time.Now()
		took, how := endsWithin(ctx, w, 1, frozen)
		ginkgo.GinkgoWriter.Printf("peer frozen (SIGSTOP): the proxied watch ended %s later (%s)\n", took.Round(time.Millisecond), how)
		gomega.Expect(took).To(gomega.BeNumerically("<=", watchEndBound), "after the peer froze")
		restoreB(ctx)
		watching(ctx, w, 2)

		killed := time.Now() // Kill returns once B exited, by when the watch may have ended
		b.Kill()
		took, how = endsWithin(ctx, w, 2, killed)
		ginkgo.GinkgoWriter.Printf("peer killed (SIGKILL): the proxied watch ended %s later (%s)\n", took.Round(time.Millisecond), how)
		gomega.Expect(took).To(gomega.BeNumerically("<=", watchEndBound), "after the peer was killed")
		restoreB(ctx)
	})

	ginkgo.It("ends its proxied watches with its own when it stops, within the watch termination grace period", func(ctx context.Context) {
		proxied := newWatcher(a, jobsPath)
		local := newWatcher(a, "/api/v1/namespaces/"+ns+"/configmaps")
		wctx, stop := context.WithCancel(ctx)
		defer stop()
		for _, w := range []*harness.Watcher{proxied, local} {
			go w.Run(wctx)
			watching(ctx, w, 1)
		}
		stopped := make(chan error, 1)
		began := time.Now()
		go func() { stopped <- a.Stop(time.Minute) }()
		tookProxied, howProxied := endsWithin(ctx, proxied, 1, began)
		tookLocal, howLocal := endsWithin(ctx, local, 1, began)
		gomega.Expect(<-stopped).To(gomega.Succeed())
		exited := time.Since(began)
		ginkgo.GinkgoWriter.Printf("server stopped (SIGTERM): its proxied watch ended after %s (%s), its own after %s (%s), the process exited after %s\n",
			tookProxied.Round(time.Millisecond), howProxied, tookLocal.Round(time.Millisecond), howLocal, exited.Round(time.Millisecond))
		gomega.Expect(howProxied).To(gomega.Equal("EOF"), "the proxied watch ends as a complete response")
		gomega.Expect(tookProxied).To(gomega.BeNumerically("<=", tookLocal+time.Second), "the proxied watch ends with the server's own")
		gomega.Expect(exited).To(gomega.BeNumerically("<", 30*time.Second), "the stop does not wait for the proxied watch")

		var err error
		a, err = a.Restart(ctx)
		gomega.Expect(err).NotTo(gomega.HaveOccurred())
		waitRoute(ctx, a, idB)
	})

	ginkgo.It("keeps every watcher's Jobs complete and in order, each seen once, while its peers are killed, frozen and stopped", func(ctx context.Context) {
		c, err := cluster.StartServer(ctx, harness.ServerOptions{Name: "wf-c", IP: "127.0.0.123"})
		gomega.Expect(err).NotTo(gomega.HaveOccurred())
		ginkgo.DeferCleanup(func() { c.Stop(30 * time.Second) })
		idC, err := c.ID(ctx)
		gomega.Expect(err).NotTo(gomega.HaveOccurred())
		waitRoute(ctx, a, idB, idC)

		const watchers = 10
		ws := make([]*harness.Watcher, watchers)
		wctx, stop := context.WithCancel(ctx)
		defer stop()
		for i := range ws {
			ws[i] = newWatcher(a, jobsPath)
			go ws[i].Run(wctx)
		}
		for _, w := range ws {
			watching(ctx, w, 1)
		}
		created := createJobs(wctx, []kubernetes.Interface{b.Client(), c.Client()}, ns, "seq-")

		faults := []struct {
			name  string
			fault func()
		}{
			{"B killed and started again", func() { b.Kill(); restoreB(ctx) }},
			{"C frozen for 8s", func() { freezeFor(ctx, c, 8*time.Second) }},
			{"B stopped gracefully and started again", func() { gomega.Expect(b.Stop(time.Minute)).To(gomega.Succeed()); restoreB(ctx) }},
			{"C killed and started again", func() {
				c.Kill()
				c, idC = revive(ctx, c)
				waitRoute(ctx, a, idB, idC)
			}},
		}
		for _, f := range faults {
			began := time.Now()
			f.fault()
			ginkgo.GinkgoWriter.Printf("fault %q: %s\n", f.name, time.Since(began).Round(time.Millisecond))
		}
		names := created()
		gomega.Expect(len(names)).To(gomega.BeNumerically(">=", 100), "Jobs created during the faults")

		// The truth is what is stored: a create whose answer was lost may
		// still have been written.
		stored := storedJobs(ctx, c, ns, "seq-")
		gomega.Expect(stored).To(gomega.ContainElements(names))
		for i, w := range ws {
			gomega.Eventually(ctx, func() []string { notOnce, _ := w.Check(stored); return notOnce }).
				WithTimeout(60*time.Second).WithPolling(250*time.Millisecond).Should(gomega.BeEmpty(), "watcher %d: every Job exactly once", i)
			_, outOfOrder := w.Check(stored)
			gomega.Expect(outOfOrder).To(gomega.BeEmpty(), "watcher %d: Jobs in the order they were written", i)
			st := w.State()
			ginkgo.GinkgoWriter.Printf("watcher %d: %d Jobs, %d streams, %d ended, %d lists\n", i, len(stored), st.Opened, len(st.Ends), st.Lists)
		}
	})
})

// watching waits until w's stream number n is open.
func watching(ctx context.Context, w *harness.Watcher, n int) {
	gomega.Eventually(ctx, func() int { return w.State().Opened }).
		WithTimeout(60*time.Second).WithPolling(100*time.Millisecond).Should(gomega.BeNumerically(">=", n), "watch stream %d open", n)
}

// endsWithin waits for w's stream number n to end and says how long after
// fault that was, and how it ended.
func endsWithin(ctx context.Context, w *harness.Watcher, n int, fault time.Time) (time.Duration, string) {
	took, how, ended := endsBy(ctx, w, n, fault, time.Minute)
	gomega.ExpectWithOffset(1, ended).To(gomega.BeTrue(), "watch stream %d ended within a minute", n)
	return took, how
}

func newWatcher(s *harness.Server, path string) *harness.Watcher {
	w, err := harness.NewWatcher(s, path)
	gomega.Expect(err).NotTo(gomega.HaveOccurred())
	return w
}

// createJobs writes a Job named prefix+number every 100 ms until ctx ends,
// through the first of clients that answers; done stops it and returns the
// names whose creation was answered.
func createJobs(ctx context.Context, clients []kubernetes.Interface, ns, prefix string) (done func() []string) {
	ctx, cancel := context.WithCancel(ctx)
	var mu sync.Mutex
	var names []string
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; ctx.Err() == nil; i++ {
			name := fmt.Sprintf("%s%05d", prefix, i)
			for _, c := range clients {
				cctx, ccancel := context.WithTimeout(ctx, 3*time.Second)
				_, err := c.BatchV1().Jobs(ns).Create(cctx, newJob(name), metav1.CreateOptions{})
				ccancel()
				if err == nil {
					mu.Lock()
					names = append(names, name)
					mu.Unlock()
					break
				}
			}
			harness.Pause(ctx, 100*time.Millisecond)
		}
	}()
	return func() []string {
		cancel()
		wg.Wait()
		mu.Lock()
		defer mu.Unlock()
		return names
	}
}

// storedJobs lists the Jobs in ns whose names start with prefix.
func storedJobs(ctx context.Context, s *harness.Server, ns, prefix string) []string {
	l, err := s.Client().BatchV1().Jobs(ns).List(ctx, metav1.ListOptions{})
	gomega.Expect(err).NotTo(gomega.HaveOccurred())
	var names []string
	for _, j := range l.Items {
		if strings.HasPrefix(j.Name, prefix) {
			names = append(names, j.Name)
		}
	}
	return names
}

// freezeFor stops s (SIGSTOP) for d, then lets it run on and waits until
// it is ready again.
func freezeFor(ctx context.Context, s *harness.Server, d time.Duration) {
	gomega.Expect(s.Freeze()).To(gomega.Succeed())
	harness.Pause(ctx, d)
	gomega.Expect(s.Thaw()).To(gomega.Succeed())
	gomega.Expect(s.WaitReady(ctx, 2*time.Minute)).To(gomega.Succeed())
}
