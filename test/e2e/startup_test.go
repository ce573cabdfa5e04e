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
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/onsi/ginkgo/v2"
	"github.com/onsi/gomega"

	"github.com/mvp-apiserver/kube-apiserver/test/e2e/harness"
)

// upstreamMVPHooks are upstream's own proxy hooks, which must never run.
var upstreamMVPHooks = []string{"mixed-version-proxy-handler", "local-discovery-cache-sync", "peer-discovery-workers"}

// ourHooks are the post-start hooks of our Mixed Version Proxy.
var ourHooks = []string{"mvp-storage-version-registration", "mvp-peer-table"}

func readyzVerbose(ctx context.Context, s *harness.Server) string {
	resp, err := s.HTTPClient().Get(s.URL + "/readyz?verbose")
	gomega.Expect(err).NotTo(gomega.HaveOccurred())
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	gomega.Expect(err).NotTo(gomega.HaveOccurred())
	gomega.Expect(resp.StatusCode).To(gomega.Equal(200), string(body))
	return string(body)
}

var _ = ginkgo.Describe("[Feature:MixedVersionProxy] start-up", ginkgo.Label(labelHarness), func() {
	ginkgo.It("becomes ready with the gate on, running our hooks and none of upstream's proxy", func(ctx context.Context) {
		s, err := cluster.StartServer(ctx, harness.ServerOptions{Name: "startup-on", IP: "127.0.0.21", Gate: harness.On(true)})
		gomega.Expect(err).NotTo(gomega.HaveOccurred())
		defer s.Stop(30 * time.Second)

		body := readyzVerbose(ctx, s)
		for _, h := range ourHooks {
			gomega.Expect(body).To(gomega.ContainSubstring("[+]poststarthook/"+h+" ok"), "our hook %s", h)
		}
		for _, h := range upstreamMVPHooks {
			gomega.Expect(body).NotTo(gomega.ContainSubstring(h), "upstream's hook %s", h)
		}
	})

	ginkgo.It("becomes ready with the gate off, running no proxy hook at all", func(ctx context.Context) {
		s, err := cluster.StartServer(ctx, harness.ServerOptions{Name: "startup-off", IP: "127.0.0.22", Gate: harness.On(false)})
		gomega.Expect(err).NotTo(gomega.HaveOccurred())
		defer s.Stop(30 * time.Second)

		body := readyzVerbose(ctx, s)
		for _, h := range append(append([]string{}, ourHooks...), upstreamMVPHooks...) {
			gomega.Expect(body).NotTo(gomega.ContainSubstring(h))
		}
		gomega.Expect(body).To(gomega.ContainSubstring("readyz check passed"))
	})

	ginkgo.It("warns once and still becomes ready when the gate is on without --peer-ca-file", func(ctx context.Context) {
		s, err := cluster.StartServer(ctx, harness.ServerOptions{Name: "startup-noca", IP: "127.0.0.23", Gate: harness.On(true), NoPeerCA: true})
		gomega.Expect(err).NotTo(gomega.HaveOccurred())
		defer s.Stop(30 * time.Second)

		body := readyzVerbose(ctx, s)
		gomega.Expect(body).To(gomega.ContainSubstring("[+]poststarthook/mvp-storage-version-registration ok"))
		logs, err := os.ReadFile(s.LogPath)
		gomega.Expect(err).NotTo(gomega.HaveOccurred())
		gomega.Expect(strings.Count(string(logs), "without --peer-ca-file")).To(gomega.Equal(1))
	})

	ginkgo.It("lists each peer flag exactly once in --help", func() {
		out, err := exec.Command(filepath.Join(binDir, "kube-apiserver"), "--help").CombinedOutput()
		gomega.Expect(err).NotTo(gomega.HaveOccurred())
		for _, f := range []string{"--peer-ca-file", "--peer-advertise-ip", "--peer-advertise-port"} {
			gomega.Expect(strings.Count(string(out), "      "+f+" ")).To(gomega.Equal(1), "%s in --help", f)
		}
	})

	ginkgo.It("reports the upstream base version and the fork in --version", func() {
		out, err := exec.Command(filepath.Join(binDir, "kube-apiserver"), "--version").CombinedOutput()
		gomega.Expect(err).NotTo(gomega.HaveOccurred())
		gomega.Expect(string(out)).To(gomega.MatchRegexp(`^Kubernetes v1\.37\.\d+\+mvp\.[0-9a-f]+\n$`))
	})

	ginkgo.DescribeTable("refuses bad peer flags before touching etcd",
		func(wantFlag string, args ...string) {
			// A listener posing as etcd: the server must exit before dialing it.
			l, err := net.Listen("tcp", "127.0.0.1:0")
			gomega.Expect(err).NotTo(gomega.HaveOccurred())
			defer l.Close()
			var dialed atomic.Int32
			go func() {
				for {
					c, err := l.Accept()
					if err != nil {
						return
					}
					dialed.Add(1)
					c.Close()
				}
			}()

			dir := ginkgo.GinkgoT().TempDir()
			notPEM := filepath.Join(dir, "not-pem")
			gomega.Expect(os.WriteFile(notPEM, []byte("not a certificate\n"), 0o600)).To(gomega.Succeed())
			// Entries are built before the suite's PKI exists: fill in its paths.
			for i, a := range args {
				args[i] = strings.NewReplacer("@CA@", cluster.PKI.CAFile, "@NOTPEM@", notPEM).Replace(a)
			}
			base := []string{
				"--etcd-servers=http://" + l.Addr().String(),
				"--bind-address=127.0.0.24", "--secure-port=0", "--cert-dir=" + dir,
				"--service-account-key-file=" + cluster.PKI.SAKey,
				"--service-account-signing-key-file=" + cluster.PKI.SAKey,
				"--service-account-issuer=https://kubernetes.default.svc",
			}
			cmd := exec.Command(filepath.Join(binDir, "kube-apiserver"), append(base, args...)...)
			out, err := cmd.CombinedOutput()
			gomega.Expect(err).To(gomega.HaveOccurred(), "must exit non-zero:\n%s", out)
			gomega.Expect(cmd.ProcessState.ExitCode()).NotTo(gomega.Equal(0))
			gomega.Expect(string(out)).To(gomega.ContainSubstring(wantFlag))
			gomega.Expect(dialed.Load()).To(gomega.BeZero(), "the server dialed etcd before refusing its flags")
		},
		ginkgo.Entry("a peer flag with the gate off", "--peer-advertise-ip requires the UnknownVersionInteroperabilityProxy feature gate",
			"--feature-gates=UnknownVersionInteroperabilityProxy=false", "--peer-advertise-ip=127.0.0.24"),
		ginkgo.Entry("an IP that is not one", `--peer-advertise-ip=not-an-ip is not a valid IP address`,
			"--feature-gates=UnknownVersionInteroperabilityProxy=true", "--peer-advertise-ip=not-an-ip"),
		ginkgo.Entry("a port out of range", `--peer-advertise-port=70000 is not a valid port`,
			"--feature-gates=UnknownVersionInteroperabilityProxy=true", "--peer-advertise-port=70000"),
		ginkgo.Entry("an unreadable CA file", "--peer-ca-file=/nonexistent/ca.crt cannot be read",
			"--feature-gates=UnknownVersionInteroperabilityProxy=true", "--peer-ca-file=/nonexistent/ca.crt",
			"--proxy-client-cert-file=x", "--proxy-client-key-file=y"),
		ginkgo.Entry("a CA file that is not PEM", "holds no PEM certificate",
			"--feature-gates=UnknownVersionInteroperabilityProxy=true", "--peer-ca-file=@NOTPEM@",
			"--proxy-client-cert-file=x", "--proxy-client-key-file=y"),
		ginkgo.Entry("proxying without the proxy client certificate", "--peer-ca-file enables proxying to peers, which requires --proxy-client-cert-file and --proxy-client-key-file",
			"--feature-gates=UnknownVersionInteroperabilityProxy=true", "--peer-ca-file=@CA@"),
		ginkgo.Entry("the StorageVersion API disabled with the gate on", "--runtime-config=internal.apiserver.k8s.io/v1alpha1=false conflicts",
			"--feature-gates=UnknownVersionInteroperabilityProxy=true", "--runtime-config=internal.apiserver.k8s.io/v1alpha1=false"),
	)
})

// startupTime launches a server with o, returns how long it took until
// /readyz answered ok, and stops it gracefully.
func startupTime(ctx context.Context, o harness.ServerOptions) time.Duration {
	start := time.Now()
	s, err := cluster.LaunchServer(o)
	gomega.Expect(err).NotTo(gomega.HaveOccurred())
	err = s.WaitReady(ctx, 2*time.Minute)
	took := time.Since(start)
	gomega.Expect(err).NotTo(gomega.HaveOccurred())
	gomega.Expect(s.Stop(time.Minute)).To(gomega.Succeed())
	return took
}

func median(ds []time.Duration) time.Duration {
	s := append([]time.Duration(nil), ds...)
	slices.Sort(s)
	return s[len(s)/2]
}

var _ = ginkgo.Describe("[Feature:MixedVersionProxy] start-up time", ginkgo.Label(labelHarness), func() {
	ginkgo.It("restarts ready within 1.2x vanilla v1.37.2's time, measured in the same cluster", func(ctx context.Context) {
		peer, err := cluster.StartServer(ctx, harness.ServerOptions{Name: "su-peer", IP: "127.0.0.24"})
		gomega.Expect(err).NotTo(gomega.HaveOccurred())
		defer peer.Stop(30 * time.Second)
		port := func(ip string) int {
			l, err := net.Listen("tcp", ip+":0")
			gomega.Expect(err).NotTo(gomega.HaveOccurred())
			defer l.Close()
			return l.Addr().(*net.TCPAddr).Port
		}
		ours := harness.ServerOptions{Name: "su-ours", IP: "127.0.0.25", Port: port("127.0.0.25")}
		vanilla := harness.ServerOptions{Name: "su-vanilla", IP: "127.0.0.26", Port: port("127.0.0.26"),
			Binary: filepath.Join(binDir, "kube-apiserver-upstream")}
		// A first start of each registers its identity; the restarts that
		// follow, taking turns, are what is measured.
		startupTime(ctx, ours)
		startupTime(ctx, vanilla)
		var o, v []time.Duration
		for range 3 {
			o = append(o, startupTime(ctx, ours))
			v = append(v, startupTime(ctx, vanilla))
		}
		ratio := float64(median(o)) / float64(median(v))
		ginkgo.GinkgoWriter.Printf("start to /readyz ok, restarts: ours %v (median %v), vanilla v1.37.2 %v (median %v), ratio %.2f\n",
			o, median(o), v, median(v), ratio)
		gomega.Expect(ratio).To(gomega.BeNumerically("<=", 1.2))
	})
})
