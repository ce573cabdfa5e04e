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

// Package e2e is the Mixed Version Proxy's end-to-end suite. It drives real
// processes: etcd and kube-apiservers built by `make build`, started by the
// harness in this folder; or, given two kubeconfigs, existing servers.
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

// External mode: existing servers, an old one that does not serve
// batch/v1 and a new one that does, each reached by its kubeconfig.
var (
	externalOld = os.Getenv("MVP_E2E_OLD_KUBECONFIG")
	externalNew = os.Getenv("MVP_E2E_NEW_KUBECONFIG")
)

// labelHarness marks specs that start, stop, freeze or reconfigure
// servers: they run only against the local harness.
const labelHarness = "harness"

func external() bool { return externalOld != "" }

// cluster is the suite's etcd and PKI (nil in external mode); specs start
// the servers they need. workDir holds files and logs of the run.
var (
	cluster *harness.Cluster
	workDir string
)

func TestE2E(t *testing.T) {
	if (externalOld == "") != (externalNew == "") {
		t.Fatalf("external mode needs both MVP_E2E_OLD_KUBECONFIG and MVP_E2E_NEW_KUBECONFIG (got old=%q new=%q)", externalOld, externalNew)
	}
	gomega.RegisterFailHandler(ginkgo.Fail)
	suiteConfig, reporterConfig := ginkgo.GinkgoConfiguration()
	if external() {
		// Specs that control server processes cannot run against servers
		// we did not start: leave them out (they are not run, not skipped).
		filter := "!" + labelHarness
		if suiteConfig.LabelFilter != "" {
			filter = "(" + suiteConfig.LabelFilter + ") && " + filter
		}
		suiteConfig.LabelFilter = filter
	}
	ginkgo.RunSpecs(t, "Mixed Version Proxy e2e", suiteConfig, reporterConfig)
}

var _ = ginkgo.BeforeSuite(func(ctx context.Context) {
	need := []string{"kube-controller-manager", "kubectl"}
	if !external() {
		need = append(need, "kube-apiserver", "etcd")
	}
	for _, b := range need {
		_, err := os.Stat(filepath.Join(binDir, b))
		gomega.Expect(err).NotTo(gomega.HaveOccurred(), "run `make build` first (MVP_BIN_DIR=%s)", binDir)
	}
	var err error
	workDir, err = os.MkdirTemp("", "mvp-e2e-")
	gomega.Expect(err).NotTo(gomega.HaveOccurred())
	ginkgo.GinkgoWriter.Printf("files and logs under %s\n", workDir)
	if external() {
		ginkgo.GinkgoWriter.Printf("external mode: old server from %s, new server from %s; specs labelled %q left out\n", externalOld, externalNew, labelHarness)
		return
	}
	cluster, err = harness.NewCluster(ctx, binDir, workDir)
	gomega.Expect(err).NotTo(gomega.HaveOccurred())
})

var _ = ginkgo.AfterSuite(func() {
	if cluster != nil {
		cluster.Stop()
	}
})
