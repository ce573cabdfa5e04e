// Package e2e is the Mixed Version Proxy's end-to-end suite. It drives real
// processes: etcd and kube-apiservers built by `make build`, started by the
// harness in this folder.
package e2e

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/onsi/ginkgo/v2"
	"github.com/onsi/gomega"

	"github.com/mvp-apiserver/kube-apiserver/test/e2e/harness"
)

// binDir holds the binaries under test; `make test` sets MVP_BIN_DIR.
var binDir = func() string {
	if d := os.Getenv("MVP_BIN_DIR"); d != "" {
		return d
	}
	abs, _ := filepath.Abs("../../_output/bin")
	return abs
}()

// cluster is the suite's etcd and PKI; specs start the servers they need.
var cluster *harness.Cluster

func TestE2E(t *testing.T) {
	gomega.RegisterFailHandler(ginkgo.Fail)
	ginkgo.RunSpecs(t, "Mixed Version Proxy e2e")
}

var _ = ginkgo.BeforeSuite(func(ctx context.Context) {
	for _, b := range []string{"kube-apiserver", "etcd", "kube-controller-manager", "kubectl"} {
		_, err := os.Stat(filepath.Join(binDir, b))
		gomega.Expect(err).NotTo(gomega.HaveOccurred(), "run `make build` first (MVP_BIN_DIR=%s)", binDir)
	}
	dir, err := os.MkdirTemp("", "mvp-e2e-")
	gomega.Expect(err).NotTo(gomega.HaveOccurred())
	cluster, err = harness.NewCluster(ctx, binDir, dir)
	gomega.Expect(err).NotTo(gomega.HaveOccurred())
	ginkgo.GinkgoWriter.Printf("cluster files and logs under %s\n", dir)
})

var _ = ginkgo.AfterSuite(func() {
	if cluster != nil {
		cluster.Stop()
	}
})
