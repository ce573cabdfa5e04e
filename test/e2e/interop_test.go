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

	apidiscoveryv2 "k8s.io/api/apidiscovery/v2"
	corev1 "k8s.io/api/core/v1"
	storagemigrationv1 "k8s.io/api/storagemigration/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/mvp-apiserver/kube-apiserver/test/e2e/harness"
)

// newMigration is a StorageVersionMigration of ConfigMaps:
// storagemigration.k8s.io/v1 is new in 1.37, so a 1.36 server lacks it.
func newMigration(name string) *storagemigrationv1.StorageVersionMigration {
	return &storagemigrationv1.StorageVersionMigration{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec:       storagemigrationv1.StorageVersionMigrationSpec{Resource: metav1.GroupResource{Resource: "configmaps"}},
	}
}

var _ = ginkgo.Describe("[Feature:MixedVersionProxy] interop with vanilla servers", ginkgo.Ordered, ginkgo.ContinueOnFailure, ginkgo.Label(labelHarness), func() {
	const ns = "interop"
	var old136, ours, vanilla137 *harness.Server

	ginkgo.BeforeAll(func(ctx context.Context) {
		servers := startAll(ctx,
			// Vanilla v1.36.3 with its own proxy (the gate is beta, on, in
			// 1.36; --peer-ca-file turns proxying on).
			harness.ServerOptions{Name: "io-v136", IP: "127.0.0.91", Binary: filepath.Join(binDir, "kube-apiserver-previous")},
			// Ours, without batch/v1: it must route Jobs to the vanilla peer,
			// which writes no StorageVersions, from its discovery alone.
			harness.ServerOptions{Name: "io-ours", IP: "127.0.0.92", Args: []string{"--runtime-config=batch/v1=false"}},
			// Vanilla v1.37.2 without storagemigration.k8s.io/v1: only ours
			// serves it there, so upstream's proxy must reach ours.
			harness.ServerOptions{Name: "io-v137", IP: "127.0.0.93", Binary: filepath.Join(binDir, "kube-apiserver-upstream"),
				Args: []string{"--runtime-config=storagemigration.k8s.io/v1=false"}},
		)
		old136, ours, vanilla137 = servers[0], servers[1], servers[2]
		ginkgo.DeferCleanup(func() {
			for _, s := range servers {
				s.Stop(30 * time.Second)
			}
		})
		_, err := ours.Client().CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{})
		gomega.Expect(err).NotTo(gomega.HaveOccurred())
	})

	ginkgo.It("vanilla v1.36.3 proxies storagemigration.k8s.io/v1, which it lacks, to ours", func(ctx context.Context) {
		_, err := ours.Client().StoragemigrationV1().StorageVersionMigrations().Create(ctx, newMigration("io-cm"), metav1.CreateOptions{})
		gomega.Expect(err).NotTo(gomega.HaveOccurred())
		gomega.Eventually(ctx, func(g gomega.Gomega) {
			got, err := old136.Client().StoragemigrationV1().StorageVersionMigrations().Get(ctx, "io-cm", metav1.GetOptions{})
			g.Expect(err).NotTo(gomega.HaveOccurred())
			g.Expect(got.Spec.Resource.Resource).To(gomega.Equal("configmaps"))
		}).WithTimeout(60 * time.Second).WithPolling(500 * time.Millisecond).Should(gomega.Succeed())
	})

	ginkgo.It("vanilla v1.37.2 proxies storagemigration.k8s.io/v1, turned off there, to ours", func(ctx context.Context) {
		_, err := ours.Client().StoragemigrationV1().StorageVersionMigrations().Create(ctx, newMigration("io-cm-137"), metav1.CreateOptions{})
		gomega.Expect(err).NotTo(gomega.HaveOccurred())
		gomega.Eventually(ctx, func(g gomega.Gomega) {
			got, err := vanilla137.Client().StoragemigrationV1().StorageVersionMigrations().Get(ctx, "io-cm-137", metav1.GetOptions{})
			g.Expect(err).NotTo(gomega.HaveOccurred())
			g.Expect(got.Name).To(gomega.Equal("io-cm-137"))
		}).WithTimeout(60 * time.Second).WithPolling(500 * time.Millisecond).Should(gomega.Succeed())
	})

	ginkgo.It("ours routes batch/v1, which it lacks, to the vanilla peer from its discovery", func(ctx context.Context) {
		_, err := old136.Client().BatchV1().Jobs(ns).Create(ctx, newJob("io-job"), metav1.CreateOptions{})
		gomega.Expect(err).NotTo(gomega.HaveOccurred())
		gomega.Eventually(ctx, func(g gomega.Gomega) {
			got, err := ours.Client().BatchV1().Jobs(ns).Get(ctx, "io-job", metav1.GetOptions{})
			g.Expect(err).NotTo(gomega.HaveOccurred())
			g.Expect(got.Name).To(gomega.Equal("io-job"))
		}).WithTimeout(60 * time.Second).WithPolling(500 * time.Millisecond).Should(gomega.Succeed())
	})

	ginkgo.It("lists, in ours' merged discovery, what the vanilla peers serve and what only ours serves", func(ctx context.Context) {
		gomega.Eventually(ctx, func(g gomega.Gomega) {
			_, _, list, err := aggregatedAPIs(ours, acceptAggregated)
			g.Expect(err).NotTo(gomega.HaveOccurred())
			g.Expect(versionFreshness(list, "batch", "v1")).To(gomega.Equal(apidiscoveryv2.DiscoveryFreshnessCurrent))
			g.Expect(versionFreshness(list, "storagemigration.k8s.io", "v1")).To(gomega.Equal(apidiscoveryv2.DiscoveryFreshnessCurrent))
			_, _, own, err := aggregatedAPIs(ours, acceptNoPeer)
			g.Expect(err).NotTo(gomega.HaveOccurred())
			g.Expect(versionFreshness(own, "batch", "v1")).To(gomega.BeEmpty(), "ours' own view lacks batch/v1")
		}).WithTimeout(60 * time.Second).WithPolling(500 * time.Millisecond).Should(gomega.Succeed())
	})
})
