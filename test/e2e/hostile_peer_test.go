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
	"fmt"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/onsi/ginkgo/v2"
	"github.com/onsi/gomega"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/mvp-apiserver/kube-apiserver/pkg/controlplane/peerproxy/discovery"
	"github.com/mvp-apiserver/kube-apiserver/pkg/controlplane/peerproxy/peers"
	"github.com/mvp-apiserver/kube-apiserver/test/e2e/harness"
)

// hostileHeapBound is how far above its live heap before the hostile peer
// A's live heap may be at any sample while the peer misbehaves: a fetch
// reads at most 16 MiB (and one byte) of a document, and io.ReadAll's
// growth may hold about twice that for a moment.
const hostileHeapBound = 48 << 20

// How the hostile peer answers.
const (
	hostileGarbage   = "garbage"   // aggregated discovery's type, a body that is not JSON
	hostileHuge      = "50 MB"     // a document of 50 MB
	hostileSlowloris = "slowloris" // the headers, then a byte every 100 ms
	hostileFlapping  = "flapping"  // valid discovery, another group at every fetch of /apis
)

// hostilePeer is a TLS server with a certificate the cluster's CA signed,
// registered as a live kube-apiserver by an identity lease the spec keeps
// renewing, that answers discovery as mode says.
type hostilePeer struct {
	id, address string
	mode        atomic.Value // string
	srv         *http.Server
	// sent counts the bytes of 50 MB documents written; flaps the /apis
	// answers in flapping mode.
	sent, flaps atomic.Int64
}

func startHostilePeer(c *harness.Cluster, id, ip string) *hostilePeer {
	certFile, keyFile, err := c.PKI.IssueServing(id, net.ParseIP(ip))
	gomega.Expect(err).NotTo(gomega.HaveOccurred())
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	gomega.Expect(err).NotTo(gomega.HaveOccurred())
	ln, err := tls.Listen("tcp", net.JoinHostPort(ip, "6443"), &tls.Config{Certificates: []tls.Certificate{cert}, NextProtos: []string{"h2", "http/1.1"}})
	gomega.Expect(err).NotTo(gomega.HaveOccurred())
	h := &hostilePeer{id: id, address: ln.Addr().String()}
	h.mode.Store(hostileGarbage)
	h.srv = &http.Server{Handler: http.HandlerFunc(h.serve)}
	go h.srv.Serve(ln)
	ginkgo.DeferCleanup(h.srv.Close)
	return h
}

func (h *hostilePeer) serve(w http.ResponseWriter, r *http.Request) {
	mode := h.mode.Load().(string)
	w.Header().Set("Content-Type", "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList")
	switch mode {
	case hostileGarbage:
		fmt.Fprint(w, "\x00\xff{not json")
	case hostileHuge:
		fmt.Fprint(w, `{"kind":"APIGroupDiscoveryList","items":[{"metadata":{"name":"`)
		chunk := []byte(strings.Repeat("x", 1<<16))
		for range (50 << 20) / len(chunk) {
			n, err := w.Write(chunk)
			h.sent.Add(int64(n))
			if err != nil {
				return
			}
		}
	case hostileSlowloris:
		w.WriteHeader(http.StatusOK)
		tick := time.NewTicker(100 * time.Millisecond)
		defer tick.Stop()
		for {
			w.(http.Flusher).Flush()
			select {
			case <-r.Context().Done():
				return
			case <-tick.C:
				if _, err := w.Write([]byte("{")); err != nil {
					return
				}
			}
		}
	case hostileFlapping:
		switch r.URL.Path {
		case "/api":
			fmt.Fprint(w, `{"kind":"APIGroupDiscoveryList","apiVersion":"apidiscovery.k8s.io/v2","items":[]}`)
		case "/apis":
			fmt.Fprint(w, flappingGroup(h.flaps.Add(1)))
		default:
			http.NotFound(w, r)
		}
	}
}

// flappingGroup is a discovery document of one group named after n.
func flappingGroup(n int64) string {
	g := fmt.Sprintf("flap-%d.example.com", n)
	return fmt.Sprintf(`{"kind":"APIGroupDiscoveryList","apiVersion":"apidiscovery.k8s.io/v2","items":[{"metadata":{"name":%q},"versions":[{"version":"v1","freshness":"Current","resources":[{"resource":"things","singularResource":"thing","scope":"Namespaced","verbs":["get","list"],"responseKind":{"group":%q,"version":"v1","kind":"Thing"}}]}]}]}`, g, g)
}

// register creates the peer's identity lease through s and renews it
// every 5 s until the spec ends, so every server holds the peer live.
func (h *hostilePeer) register(ctx context.Context, s *harness.Server) {
	leases := s.Client().CoordinationV1().Leases(metav1.NamespaceSystem)
	now := metav1.NewMicroTime(time.Now())
	_, err := leases.Create(ctx, &coordinationv1.Lease{
		ObjectMeta: metav1.ObjectMeta{
			Name:        h.id,
			Labels:      map[string]string{"apiserver.kubernetes.io/identity": "kube-apiserver"},
			Annotations: map[string]string{peers.PeerAddressAnnotation: h.address},
		},
		Spec: coordinationv1.LeaseSpec{HolderIdentity: ptr.To(h.id), LeaseDurationSeconds: ptr.To[int32](3600), RenewTime: &now},
	}, metav1.CreateOptions{})
	gomega.Expect(err).NotTo(gomega.HaveOccurred())
	renewCtx, stop := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		tick := time.NewTicker(5 * time.Second)
		defer tick.Stop()
		for {
			select {
			case <-renewCtx.Done():
				return
			case <-tick.C:
				l, err := leases.Get(renewCtx, h.id, metav1.GetOptions{})
				if err != nil {
					continue
				}
				l.Spec.RenewTime = ptr.To(metav1.NewMicroTime(time.Now()))
				leases.Update(renewCtx, l, metav1.UpdateOptions{})
			}
		}
	}()
	ginkgo.DeferCleanup(func() { stop(); wg.Wait() })
}

// discoveryState is what s's /debug/peerproxy says of peer id's discovery.
func discoveryState(s *harness.Server, id string) (discovery.PeerState, error) {
	d, err := debugDocument(s)
	if err != nil {
		return discovery.PeerState{}, err
	}
	if d.Discovery == nil {
		return discovery.PeerState{}, fmt.Errorf("no discovery in %s's /debug/peerproxy", s.Opts.Name)
	}
	for _, p := range d.Discovery.Peers {
		if p.ID == id {
			return p, nil
		}
	}
	return discovery.PeerState{}, fmt.Errorf("%s's /debug/peerproxy has no discovery state for %s", s.Opts.Name, id)
}

// heapSampler reads s's live heap every second until stopped.
type heapSampler struct {
	quit chan struct{}
	done chan struct{}
	max  uint64
	n    int
}

func sampleHeap(s *harness.Server) *heapSampler {
	hs := &heapSampler{quit: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(hs.done)
		tick := time.NewTicker(time.Second)
		defer tick.Stop()
		for {
			if heap, err := harness.LiveHeap(context.Background(), s.HTTPClient(), s.URL); err == nil {
				hs.max, hs.n = max(hs.max, heap), hs.n+1
			}
			select {
			case <-hs.quit:
				return
			case <-tick.C:
			}
		}
	}()
	return hs
}

func (hs *heapSampler) stop() (maxHeap uint64, samples int) {
	close(hs.quit)
	<-hs.done
	return hs.max, hs.n
}

var _ = ginkgo.Describe("[Feature:MixedVersionProxy] a hostile peer in the cluster", ginkgo.Ordered, func() {
	const ns = "hostile"
	var (
		a, b   *harness.Server
		idB    string
		h      *hostilePeer
		before uint64 // A's live heap before the peer misbehaved
	)

	ginkgo.BeforeAll(func(ctx context.Context) {
		c := ownCluster(ctx, "hostile")
		servers := startAllIn(ctx, c,
			harness.ServerOptions{Name: "hp-a", IP: "127.0.0.151", Args: []string{"--runtime-config=batch/v1=false"}},
			harness.ServerOptions{Name: "hp-b", IP: "127.0.0.152"},
		)
		a, b = servers[0], servers[1]
		ginkgo.DeferCleanup(func() { a.Stop(30 * time.Second); b.Stop(30 * time.Second) })
		var err error
		idB, err = b.ID(ctx)
		gomega.Expect(err).NotTo(gomega.HaveOccurred())
		_, err = b.Client().CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{})
		gomega.Expect(err).NotTo(gomega.HaveOccurred())
		ensureJob(ctx, b.Client(), ns, "steady")
		waitRoute(ctx, a, idB)
		before, err = harness.LiveHeap(ctx, a.HTTPClient(), a.URL)
		gomega.Expect(err).NotTo(gomega.HaveOccurred())

		h = startHostilePeer(c, "hostile-peer", "127.0.0.153")
		h.register(ctx, b)
	})

	// Each mode: the peer misbehaves until A has failed to read it three
	// times in that way; meanwhile Jobs are read through A (from B) every
	// 100 ms and A's readiness likewise, and A's live heap every second.
	for _, tc := range []struct {
		mode, result, says string
	}{
		{hostileGarbage, "bad_response", "decoding /api"},
		{hostileHuge, "bad_response", "larger than 16 MiB"},
		{hostileSlowloris, "timeout", ""},
	} {
		ginkgo.It(fmt.Sprintf("keeps serving through B, with a bounded heap, while the peer answers discovery with %s, and names the peer in /debug/peerproxy and the metrics", tc.mode), func(ctx context.Context) {
			counted := func() (float64, error) {
				return metricSum(a, "apiserver_peer_discovery_fetches_total", fmt.Sprintf("result=%q", tc.result))
			}
			base, err := counted()
			gomega.Expect(err).NotTo(gomega.HaveOccurred())
			from := time.Now()
			h.mode.Store(tc.mode)
			jobs := startProbe(a, "/apis/batch/v1/namespaces/"+ns+"/jobs/steady")
			ready := startProbe(a, "/readyz")
			heap := sampleHeap(a)

			gomega.Eventually(ctx, func(g gomega.Gomega) {
				st, err := discoveryState(a, h.id)
				g.Expect(err).NotTo(gomega.HaveOccurred())
				g.Expect(st.LastErrorAt).NotTo(gomega.BeNil())
				g.Expect(st.LastErrorAt.After(from)).To(gomega.BeTrue(), "an error since the mode changed")
				g.Expect(st.LastError).To(gomega.ContainSubstring(tc.says))
				n, err := counted()
				g.Expect(err).NotTo(gomega.HaveOccurred())
				g.Expect(n - base).To(gomega.BeNumerically(">=", 3))
			}).WithTimeout(60 * time.Second).WithPolling(500 * time.Millisecond).Should(gomega.Succeed())
			st, _ := discoveryState(a, h.id)
			n, err := counted()
			gomega.Expect(err).NotTo(gomega.HaveOccurred())
			maxHeap, samples := heap.stop()
			got, up := answers(jobs.stop()), answers(ready.stop())
			d, err := debugDocument(a)
			gomega.Expect(err).NotTo(gomega.HaveOccurred())
			ginkgo.GinkgoWriter.Printf("%s: A counted %.0f fetches %s in %s; its /debug/peerproxy: %q; Jobs through A %s; /readyz %s; A's live heap %.1f MiB before, at most %.1f MiB in %d samples\n",
				tc.mode, n-base, tc.result, time.Since(from).Round(time.Millisecond), st.LastError, got, up,
				float64(before)/(1<<20), float64(maxHeap)/(1<<20), samples)
			if tc.mode == hostileHuge {
				ginkgo.GinkgoWriter.Printf("50 MB: the peer wrote %.1f MiB in all\n", float64(h.sent.Load())/(1<<20))
			}

			got.expectAll(200, 10*time.Second)
			up.expectAll(200, 10*time.Second)
			gomega.Expect(d.Routes["batch/v1/jobs"]).To(gomega.ConsistOf(idB), "Jobs are still routed to B alone")
			gomega.Expect(samples).To(gomega.BeNumerically(">=", 3))
			gomega.Expect(maxHeap).To(gomega.BeNumerically("<=", before+hostileHeapBound), "A's live heap")
		})
	}

	ginkgo.It("merges a peer whose groups change at every fetch, and keeps serving through B", func(ctx context.Context) {
		from := h.flaps.Load()
		h.mode.Store(hostileFlapping)
		jobs := startProbe(a, "/apis/batch/v1/namespaces/"+ns+"/jobs/steady")
		seen := map[string]bool{}
		// Two different groups of the peer in A's merged /apis, one after
		// the other: each fetch's document replaced the last.
		gomega.Eventually(ctx, func(g gomega.Gomega) {
			resp, body, err := adminGet(a, "/apis", map[string]string{"Accept": "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList"})
			g.Expect(err).NotTo(gomega.HaveOccurred())
			g.Expect(resp.StatusCode).To(gomega.Equal(200))
			var listed []string
			for n := from + 1; n <= h.flaps.Load(); n++ {
				if name := fmt.Sprintf("flap-%d.example.com", n); strings.Contains(string(body), `"`+name+`"`) {
					listed = append(listed, name)
					seen[name] = true
				}
			}
			g.Expect(len(listed)).To(gomega.BeNumerically("<=", 1), "groups of earlier fetches were dropped: %v", listed)
			g.Expect(strings.Contains(string(body), `"batch"`)).To(gomega.BeTrue(), "B's batch group is merged")
			g.Expect(len(seen)).To(gomega.BeNumerically(">=", 2), "groups seen so far: %v", seen)
		}).WithTimeout(60 * time.Second).WithPolling(500 * time.Millisecond).Should(gomega.Succeed())
		got := answers(jobs.stop())
		st, err := discoveryState(a, h.id)
		gomega.Expect(err).NotTo(gomega.HaveOccurred())
		ginkgo.GinkgoWriter.Printf("flapping: %d /apis answers, A's merged /apis listed %d of them in turn; peer fresh=%v groups=%d; Jobs through A %s\n",
			h.flaps.Load()-from, len(seen), st.Fresh, st.Groups, got)
		got.expectAll(200, 10*time.Second)
		gomega.Expect(st.HasData).To(gomega.BeTrue())
	})
})
