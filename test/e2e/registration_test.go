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
	"fmt"
	"io"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/onsi/ginkgo/v2"
	"github.com/onsi/gomega"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/mvp-apiserver/kube-apiserver/pkg/controlplane/peerproxy"
	"github.com/mvp-apiserver/kube-apiserver/pkg/controlplane/peerproxy/peers"
	"github.com/mvp-apiserver/kube-apiserver/test/e2e/harness"
)

// entries returns StorageVersion name's entries by server ID (empty when
// the object does not exist).
func entries(ctx context.Context, s *harness.Server, name string) (map[string]peers.Entry, error) {
	sv, err := s.Client().InternalV1alpha1().StorageVersions().Get(ctx, name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return map[string]peers.Entry{}, nil
	}
	if err != nil {
		return nil, err
	}
	out := map[string]peers.Entry{}
	for _, e := range sv.Status.StorageVersions {
		out[e.APIServerID] = e
	}
	return out, nil
}

func entryIDs(m map[string]peers.Entry) []string {
	ids := make([]string, 0, len(m))
	for id := range m {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	return ids
}

// debugDocument reads s's /debug/peerproxy.
func debugDocument(s *harness.Server) (peerproxy.DebugDocument, error) {
	var d peerproxy.DebugDocument
	resp, err := s.HTTPClient().Get(s.URL + peerproxy.DebugPath)
	if err != nil {
		return d, err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		return d, fmt.Errorf("%s: %d %s", peerproxy.DebugPath, resp.StatusCode, body)
	}
	return d, json.Unmarshal(body, &d)
}

func peerLive(d peerproxy.DebugDocument, id string) (live, found bool) {
	for _, p := range d.Peers {
		if p.ID == id {
			return p.Live, true
		}
	}
	return false, false
}

// startAll starts servers concurrently and waits until all are ready.
// oldAndNew returns the old server (without batch/v1) and the new one:
// the given existing servers in external mode, else two servers started
// on ipOld and ipNew and stopped when the container ends.
func oldAndNew(ctx context.Context, prefix, ipOld, ipNew string) (old, new *harness.Server) {
	if external() {
		var err error
		old, err = harness.Attach("old", externalOld)
		gomega.Expect(err).NotTo(gomega.HaveOccurred())
		new, err = harness.Attach("new", externalNew)
		gomega.Expect(err).NotTo(gomega.HaveOccurred())
		return old, new
	}
	servers := startAll(ctx,
		harness.ServerOptions{Name: prefix + "-a", IP: ipOld, Args: []string{"--runtime-config=batch/v1=false"}},
		harness.ServerOptions{Name: prefix + "-b", IP: ipNew},
	)
	ginkgo.DeferCleanup(func() { servers[0].Stop(30 * time.Second); servers[1].Stop(30 * time.Second) })
	return servers[0], servers[1]
}

func startAll(ctx context.Context, opts ...harness.ServerOptions) []*harness.Server {
	return startAllIn(ctx, cluster, opts...)
}

// ownCluster starts an etcd and PKI for one spec, under workDir/name, and
// stops them when the spec ends: no lease of another spec's servers is in
// it (vanilla peers react to every lease in their etcd).
func ownCluster(ctx context.Context, name string) *harness.Cluster {
	c, err := harness.NewCluster(ctx, binDir, filepath.Join(workDir, name))
	gomega.Expect(err).NotTo(gomega.HaveOccurred())
	ginkgo.DeferCleanup(c.Stop)
	return c
}

// revive brings s back after a spec froze, killed or stopped it: thawed,
// or started again with the same options and port, and ready either way
// (within WaitReady's and StartServer's deadlines). A restarted server is
// a new *harness.Server: the caller keeps the result, and its identity.
func revive(ctx context.Context, s *harness.Server) (*harness.Server, string) {
	if !s.Exited() {
		gomega.Expect(s.Thaw()).To(gomega.Succeed())
		gomega.Expect(s.WaitReady(ctx, 2*time.Minute)).To(gomega.Succeed(), "%s once thawed", s.Opts.Name)
	} else {
		r, err := s.Restart(ctx)
		gomega.Expect(err).NotTo(gomega.HaveOccurred(), "starting %s again", s.Opts.Name)
		s = r
	}
	id, err := s.ID(ctx)
	gomega.Expect(err).NotTo(gomega.HaveOccurred(), "%s's identity", s.Opts.Name)
	return s, id
}

// startAllIn starts servers in c at the same time and waits until all are ready.
func startAllIn(ctx context.Context, c *harness.Cluster, opts ...harness.ServerOptions) []*harness.Server {
	servers := make([]*harness.Server, len(opts))
	errs := make([]error, len(opts))
	var wg sync.WaitGroup
	for i, o := range opts {
		wg.Add(1)
		go func() {
			defer wg.Done()
			servers[i], errs[i] = c.StartServer(ctx, o)
		}()
	}
	wg.Wait()
	for i, err := range errs {
		gomega.Expect(err).NotTo(gomega.HaveOccurred(), "starting %s", opts[i].Name)
	}
	return servers
}

var _ = ginkgo.Describe("[Feature:MixedVersionProxy] storage version registration", ginkgo.Ordered, ginkgo.ContinueOnFailure, ginkgo.Label(labelHarness), func() {
	const retention = 45 * time.Second
	var a, b *harness.Server
	var idA, idB string

	// waitPublished waits until both servers' entries are published
	// (registration runs after readiness): what the healing and
	// retention specs edit, delete and watch go.
	waitPublished := func(ctx context.Context) {
		gomega.Eventually(ctx, func(g gomega.Gomega) {
			for _, name := range []string{"apps.deployments", "batch.jobs"} {
				got, err := entries(ctx, a, name)
				g.Expect(err).NotTo(gomega.HaveOccurred())
				g.Expect(got).To(gomega.HaveKey(idB), "%s in %s", idB, name)
			}
			deployments, err := entries(ctx, a, "apps.deployments")
			g.Expect(err).NotTo(gomega.HaveOccurred())
			g.Expect(deployments).To(gomega.HaveKey(idA))
		}).WithTimeout(60 * time.Second).WithPolling(time.Second).Should(gomega.Succeed())
	}

	ginkgo.BeforeAll(func(ctx context.Context) {
		servers := startAll(ctx,
			harness.ServerOptions{Name: "reg-a", IP: "127.0.0.31", Args: []string{"--runtime-config=batch/v1=false"},
				Env: []string{"MVP_PEER_RETENTION=" + retention.String()}},
			harness.ServerOptions{Name: "reg-b", IP: "127.0.0.32"},
		)
		a, b = servers[0], servers[1]
		ginkgo.DeferCleanup(func() { a.Stop(30 * time.Second); b.Stop(30 * time.Second) })
		var err error
		idA, err = a.ID(ctx)
		gomega.Expect(err).NotTo(gomega.HaveOccurred())
		idB, err = b.ID(ctx)
		gomega.Expect(err).NotTo(gomega.HaveOccurred())
		gomega.Expect(idA).NotTo(gomega.Equal(idB), "each server has its own identity")
		waitPublished(ctx)
	})

	ginkgo.It("publishes what each server serves: batch.jobs only by B, apps.deployments by both", func(ctx context.Context) {
		gomega.Eventually(ctx, func(g gomega.Gomega) {
			jobs, err := entries(ctx, a, "batch.jobs")
			g.Expect(err).NotTo(gomega.HaveOccurred())
			g.Expect(jobs).To(gomega.HaveKey(idB))
			g.Expect(jobs).NotTo(gomega.HaveKey(idA))
			g.Expect(jobs[idB].ServedVersions).To(gomega.Equal([]string{"batch/v1"}))
			g.Expect(jobs[idB].EncodingVersion).To(gomega.Equal("batch/v1"))
			g.Expect(jobs[idB].DecodableVersions).To(gomega.ContainElement("batch/v1"))

			deployments, err := entries(ctx, a, "apps.deployments")
			g.Expect(err).NotTo(gomega.HaveOccurred())
			g.Expect(deployments).To(gomega.HaveKey(idA))
			g.Expect(deployments).To(gomega.HaveKey(idB))

			pods, err := entries(ctx, a, "core.pods")
			g.Expect(err).NotTo(gomega.HaveOccurred())
			g.Expect(pods[idA].ServedVersions).To(gomega.Equal([]string{"v1"}))
		}).WithTimeout(60 * time.Second).WithPolling(time.Second).Should(gomega.Succeed())
	})

	ginkgo.It("writes the peer address on each identity lease", func(ctx context.Context) {
		lease, err := a.Client().CoordinationV1().Leases(metav1.NamespaceSystem).Get(ctx, idB, metav1.GetOptions{})
		gomega.Expect(err).NotTo(gomega.HaveOccurred())
		gomega.Expect(lease.Annotations).To(gomega.HaveKeyWithValue(peers.PeerAddressAnnotation, fmt.Sprintf("127.0.0.32:%d", b.Opts.Port)))
	})

	ginkgo.It("heals a deleted StorageVersion with every server's entry", func(ctx context.Context) {
		err := a.Client().InternalV1alpha1().StorageVersions().Delete(ctx, "apps.deployments", metav1.DeleteOptions{})
		gomega.Expect(err).NotTo(gomega.HaveOccurred())
		start := time.Now()
		gomega.Eventually(ctx, func(g gomega.Gomega) {
			got, err := entries(ctx, a, "apps.deployments")
			g.Expect(err).NotTo(gomega.HaveOccurred())
			g.Expect(got).To(gomega.HaveKey(idA))
			g.Expect(got).To(gomega.HaveKey(idB))
		}).WithTimeout(30 * time.Second).WithPolling(200 * time.Millisecond).Should(gomega.Succeed())
		ginkgo.GinkgoWriter.Printf("deleted StorageVersion healed in %s\n", time.Since(start).Round(time.Millisecond))
	})

	ginkgo.It("heals an entry edited out of its StorageVersion", func(ctx context.Context) {
		sv, err := a.Client().InternalV1alpha1().StorageVersions().Get(ctx, "apps.deployments", metav1.GetOptions{})
		gomega.Expect(err).NotTo(gomega.HaveOccurred())
		var kept []peers.Entry
		for _, e := range sv.Status.StorageVersions {
			if e.APIServerID != idB {
				kept = append(kept, e)
			}
		}
		gomega.Expect(kept).To(gomega.HaveLen(len(sv.Status.StorageVersions) - 1))
		sv.Status.StorageVersions = kept
		_, err = a.Client().InternalV1alpha1().StorageVersions().UpdateStatus(ctx, sv, metav1.UpdateOptions{})
		gomega.Expect(err).NotTo(gomega.HaveOccurred())
		gomega.Eventually(ctx, func(g gomega.Gomega) {
			got, err := entries(ctx, a, "apps.deployments")
			g.Expect(err).NotTo(gomega.HaveOccurred())
			g.Expect(got).To(gomega.HaveKey(idB))
			g.Expect(got).To(gomega.HaveKey(idA))
		}).WithTimeout(30 * time.Second).WithPolling(200 * time.Millisecond).Should(gomega.Succeed())
	})

	ginkgo.It("registers three servers started at the same moment", func(ctx context.Context) {
		servers := startAll(ctx,
			harness.ServerOptions{Name: "reg-c", IP: "127.0.0.33"},
			harness.ServerOptions{Name: "reg-d", IP: "127.0.0.34"},
			harness.ServerOptions{Name: "reg-e", IP: "127.0.0.35"},
		)
		var ids []string
		for _, s := range servers {
			defer s.Stop(30 * time.Second)
			id, err := s.ID(ctx)
			gomega.Expect(err).NotTo(gomega.HaveOccurred())
			ids = append(ids, id)
		}
		gomega.Eventually(ctx, func(g gomega.Gomega) {
			for _, name := range []string{"apps.deployments", "core.configmaps", "batch.jobs"} {
				got, err := entries(ctx, a, name)
				g.Expect(err).NotTo(gomega.HaveOccurred())
				for _, id := range ids {
					g.Expect(got).To(gomega.HaveKey(id), "%s in %s", id, name)
				}
			}
		}).WithTimeout(60 * time.Second).WithPolling(time.Second).Should(gomega.Succeed())
	})

	ginkgo.It("leaves writing to upstream's updater when StorageVersionAPI is on as well", func(ctx context.Context) {
		s, err := cluster.StartServer(ctx, harness.ServerOptions{Name: "reg-svapi", IP: "127.0.0.36",
			Args: []string{"--feature-gates=UnknownVersionInteroperabilityProxy=true,StorageVersionAPI=true"}})
		gomega.Expect(err).NotTo(gomega.HaveOccurred())
		defer s.Stop(30 * time.Second)
		id, err := s.ID(ctx)
		gomega.Expect(err).NotTo(gomega.HaveOccurred())

		// Upstream's updater publishes this server's entries...
		gomega.Eventually(ctx, func(g gomega.Gomega) {
			got, err := entries(ctx, a, "apps.deployments")
			g.Expect(err).NotTo(gomega.HaveOccurred())
			g.Expect(got).To(gomega.HaveKey(id))
			g.Expect(got).To(gomega.HaveKey(idA), "the other servers' entries stay")
			g.Expect(got).To(gomega.HaveKey(idB))
		}).WithTimeout(60 * time.Second).WithPolling(time.Second).Should(gomega.Succeed())
		// ...ours stays out of it, and says so once.
		logs := s.LogTail(100000)
		gomega.Expect(strings.Count(logs, "upstream's storage version updater publishes this server's entries")).To(gomega.Equal(1))
		gomega.Expect(logs).NotTo(gomega.ContainSubstring("Registering this server's storage versions"))
		body := readyzVerbose(ctx, s)
		gomega.Expect(body).To(gomega.ContainSubstring("[+]poststarthook/built-in-resources-storage-version-updater ok"))
		gomega.Expect(body).To(gomega.ContainSubstring("[+]poststarthook/mvp-peer-table ok"))
	})

	ginkgo.It("keeps a killed server's entries while it is not live, then collects them after retention", func(ctx context.Context) {
		// B back after the spec: started again, live for A, its entries published.
		ginkgo.DeferCleanup(func(ctx context.Context) {
			b, idB = revive(ctx, b)
			gomega.Eventually(ctx, func(g gomega.Gomega) {
				d, err := debugDocument(a)
				g.Expect(err).NotTo(gomega.HaveOccurred())
				live, _ := peerLive(d, idB)
				g.Expect(live).To(gomega.BeTrue(), "%s live for A", idB)
			}).WithTimeout(60 * time.Second).WithPolling(time.Second).Should(gomega.Succeed())
			waitPublished(ctx)
		})
		b.Kill()
		killed := time.Now()

		var notLiveAfter time.Duration
		gomega.Eventually(ctx, func(g gomega.Gomega) {
			d, err := debugDocument(a)
			g.Expect(err).NotTo(gomega.HaveOccurred())
			live, found := peerLive(d, idB)
			g.Expect(found).To(gomega.BeTrue())
			g.Expect(live).To(gomega.BeFalse())
		}).WithTimeout(45 * time.Second).WithPolling(500 * time.Millisecond).Should(gomega.Succeed())
		notLiveAfter = time.Since(killed)
		gomega.Expect(notLiveAfter).To(gomega.BeNumerically(">=", 15*time.Second), "B was marked not live too early")

		jobs, err := entries(ctx, a, "batch.jobs")
		gomega.Expect(err).NotTo(gomega.HaveOccurred())
		gomega.Expect(jobs).To(gomega.HaveKey(idB), "B's entry is retained while B is not live")

		gomega.Eventually(ctx, func(g gomega.Gomega) {
			deployments, err := entries(ctx, a, "apps.deployments")
			g.Expect(err).NotTo(gomega.HaveOccurred())
			g.Expect(deployments).NotTo(gomega.HaveKey(idB))
			g.Expect(deployments).To(gomega.HaveKey(idA))
			jobs, err := entries(ctx, a, "batch.jobs")
			g.Expect(err).NotTo(gomega.HaveOccurred())
			g.Expect(jobs).NotTo(gomega.HaveKey(idB))
		}).WithTimeout(retention + 30*time.Second).WithPolling(time.Second).Should(gomega.Succeed())
		collectedAfter := time.Since(killed)
		gomega.Expect(collectedAfter).To(gomega.BeNumerically(">=", retention-10*time.Second), "entries collected before the retention window")
		ginkgo.GinkgoWriter.Printf("after kill -9: not live in %s, entries collected in %s (retention %s)\n",
			notLiveAfter.Round(time.Second), collectedAfter.Round(time.Second), retention)
	})
})
