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
	"net/http"
	"os/exec"
	"path/filepath"
	"time"

	"github.com/onsi/ginkgo/v2"
	"github.com/onsi/gomega"

	apidiscoveryv2 "k8s.io/api/apidiscovery/v2"
	corev1 "k8s.io/api/core/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apiextensionsclient "k8s.io/apiextensions-apiserver/pkg/client/clientset/clientset"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/uuid"
	"k8s.io/client-go/kubernetes"

	"github.com/mvp-apiserver/kube-apiserver/test/e2e/harness"
)

const (
	acceptAggregated = "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList"
	acceptNoPeer     = acceptAggregated + ";profile=nopeer"
)

// aggregatedAPIs reads s's aggregated /apis with accept.
func aggregatedAPIs(s *harness.Server, accept string) (*http.Response, []byte, apidiscoveryv2.APIGroupDiscoveryList, error) {
	var list apidiscoveryv2.APIGroupDiscoveryList
	resp, body, err := adminGet(s, "/apis", map[string]string{"Accept": accept})
	if err != nil {
		return nil, nil, list, err
	}
	err = json.Unmarshal(body, &list)
	return resp, body, list, err
}

// versionFreshness returns group/version's freshness in list, "" if absent.
func versionFreshness(list apidiscoveryv2.APIGroupDiscoveryList, group, version string) apidiscoveryv2.DiscoveryFreshness {
	for _, g := range list.Items {
		if g.Name != group {
			continue
		}
		for _, v := range g.Versions {
			if v.Version == version {
				if v.Freshness == "" {
					return apidiscoveryv2.DiscoveryFreshnessCurrent
				}
				return v.Freshness
			}
		}
	}
	return ""
}

// namespacedCRD is a minimal served v1 CRD of kind in group; its plural is
// singular + "s".
func namespacedCRD(group, singular, kind string) *apiextensionsv1.CustomResourceDefinition {
	plural := singular + "s"
	return &apiextensionsv1.CustomResourceDefinition{
		ObjectMeta: metav1.ObjectMeta{Name: plural + "." + group},
		Spec: apiextensionsv1.CustomResourceDefinitionSpec{
			Group: group,
			Names: apiextensionsv1.CustomResourceDefinitionNames{Plural: plural, Singular: singular, Kind: kind, ListKind: kind + "List"},
			Scope: apiextensionsv1.NamespaceScoped,
			Versions: []apiextensionsv1.CustomResourceDefinitionVersion{{Name: "v1", Served: true, Storage: true,
				Schema: &apiextensionsv1.CustomResourceValidation{OpenAPIV3Schema: &apiextensionsv1.JSONSchemaProps{Type: "object"}}}},
		},
	}
}

func groupCount(list apidiscoveryv2.APIGroupDiscoveryList, group string) int {
	n := 0
	for _, g := range list.Items {
		if g.Name == group {
			n++
		}
	}
	return n
}

var _ = ginkgo.Describe("[Feature:MixedVersionProxy] merged discovery", ginkgo.Ordered, ginkgo.ContinueOnFailure, func() {
	var a, b *harness.Server
	var ca kubernetes.Interface
	var kubeconfigA string

	// batchListed waits until A lists batch/v1 as current: it has read B's discovery.
	batchListed := func(ctx context.Context) {
		gomega.Eventually(ctx, func(g gomega.Gomega) {
			_, _, list, err := aggregatedAPIs(a, acceptAggregated)
			g.Expect(err).NotTo(gomega.HaveOccurred())
			g.Expect(versionFreshness(list, "batch", "v1")).To(gomega.Equal(apidiscoveryv2.DiscoveryFreshnessCurrent))
		}).WithTimeout(60 * time.Second).WithPolling(500 * time.Millisecond).Should(gomega.Succeed())
	}

	ginkgo.BeforeAll(func(ctx context.Context) {
		a, b = oldAndNew(ctx, "disc", "127.0.0.61", "127.0.0.62")
		// The kill spec starts B again: stop the B of the moment as well.
		ginkgo.DeferCleanup(func() {
			if !b.Attached() {
				b.Stop(30 * time.Second)
			}
		})
		ca = a.Client()
		var err error
		kubeconfigA, err = a.Kubeconfig(workDir)
		gomega.Expect(err).NotTo(gomega.HaveOccurred())
		batchListed(ctx)
	})

	ginkgo.It("serves the union through A; profile=nopeer is A's own view", func(ctx context.Context) {
		_, _, local, err := aggregatedAPIs(a, acceptNoPeer)
		gomega.Expect(err).NotTo(gomega.HaveOccurred())
		gomega.Expect(versionFreshness(local, "batch", "v1")).To(gomega.BeEmpty(), "A's own view must not list batch/v1")
		gomega.Expect(versionFreshness(local, "apps", "v1")).NotTo(gomega.BeEmpty())

		// Protobuf, as client-go may negotiate it.
		resp, body, err := adminGet(a, "/apis", map[string]string{"Accept": "application/vnd.kubernetes.protobuf;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList"})
		gomega.Expect(err).NotTo(gomega.HaveOccurred())
		gomega.Expect(resp.StatusCode).To(gomega.Equal(200))
		gomega.Expect(resp.Header.Get("Content-Type")).To(gomega.HavePrefix("application/vnd.kubernetes.protobuf"))
		gomega.Expect(string(body)).To(gomega.ContainSubstring("batch"))
	})

	ginkgo.It("answers the same merged /apis bytes and ETag from A and B, and 304 on If-None-Match", func(ctx context.Context) {
		gomega.Eventually(ctx, func(g gomega.Gomega) {
			ra, bodyA, _, err := aggregatedAPIs(a, acceptAggregated)
			g.Expect(err).NotTo(gomega.HaveOccurred())
			rb, bodyB, _, err := aggregatedAPIs(b, acceptAggregated)
			g.Expect(err).NotTo(gomega.HaveOccurred())
			g.Expect(ra.Header.Get("ETag")).NotTo(gomega.BeEmpty())
			g.Expect(ra.Header.Get("ETag")).To(gomega.Equal(rb.Header.Get("ETag")))
			g.Expect(string(bodyA)).To(gomega.Equal(string(bodyB)))
		}).WithTimeout(30 * time.Second).WithPolling(time.Second).Should(gomega.Succeed())

		ra, _, _, err := aggregatedAPIs(a, acceptAggregated)
		gomega.Expect(err).NotTo(gomega.HaveOccurred())
		resp, body, err := adminGet(a, "/apis", map[string]string{"Accept": acceptAggregated, "If-None-Match": ra.Header.Get("ETag")})
		gomega.Expect(err).NotTo(gomega.HaveOccurred())
		gomega.Expect(resp.StatusCode).To(gomega.Equal(http.StatusNotModified))
		gomega.Expect(body).To(gomega.BeEmpty())
	})

	ginkgo.It("lists batch in the unaggregated /apis and answers /apis/batch and /apis/batch/v1 through A", func(ctx context.Context) {
		groups, err := ca.Discovery().ServerGroups()
		gomega.Expect(err).NotTo(gomega.HaveOccurred())
		var names []string
		for _, g := range groups.Groups {
			names = append(names, g.Name)
		}
		gomega.Expect(names).To(gomega.ContainElement("batch"))

		resp, body, err := adminGet(a, "/apis/batch", map[string]string{"Accept": "application/json"})
		gomega.Expect(err).NotTo(gomega.HaveOccurred())
		gomega.Expect(resp.StatusCode).To(gomega.Equal(200), string(body))
		var group metav1.APIGroup
		gomega.Expect(json.Unmarshal(body, &group)).To(gomega.Succeed())
		gomega.Expect(group.PreferredVersion.GroupVersion).To(gomega.Equal("batch/v1"))

		resp, body, err = adminGet(a, "/apis/batch/v1", map[string]string{"Accept": "application/json"})
		gomega.Expect(err).NotTo(gomega.HaveOccurred())
		gomega.Expect(resp.StatusCode).To(gomega.Equal(200), string(body))
		var resources metav1.APIResourceList
		gomega.Expect(json.Unmarshal(body, &resources)).To(gomega.Succeed())
		var jobs *metav1.APIResource
		for i := range resources.APIResources {
			if resources.APIResources[i].Name == "jobs" {
				jobs = &resources.APIResources[i]
			}
		}
		gomega.Expect(jobs).NotTo(gomega.BeNil(), "jobs in %s", body)
		gomega.Expect(jobs.StorageVersionHash).NotTo(gomega.BeEmpty())
	})

	ginkgo.It("makes `kubectl api-resources` list jobs and `kubectl explain jobs.spec` work through A", func(ctx context.Context) {
		kubectl := filepath.Join(binDir, "kubectl")
		out, err := exec.CommandContext(ctx, kubectl, "--kubeconfig", kubeconfigA, "api-resources", "--api-group=batch").CombinedOutput()
		gomega.Expect(err).NotTo(gomega.HaveOccurred(), string(out))
		gomega.Expect(string(out)).To(gomega.MatchRegexp(`(?m)^jobs\s+batch/v1\s+true\s+Job$`))
		ginkgo.GinkgoWriter.Printf("kubectl api-resources --api-group=batch (through A):\n%s\n", out)

		out, err = exec.CommandContext(ctx, kubectl, "--kubeconfig", kubeconfigA, "explain", "jobs.spec").CombinedOutput()
		gomega.Expect(err).NotTo(gomega.HaveOccurred(), string(out))
		gomega.Expect(string(out)).To(gomega.ContainSubstring("GROUP:      batch"))
		gomega.Expect(string(out)).To(gomega.ContainSubstring("backoffLimit"))
	})

	ginkgo.It("lists a CRD once on every server and drops it from every server within seconds of its deletion", func(ctx context.Context) {
		ext := apiextensionsclient.NewForConfigOrDie(b.RESTConfig())
		// A group of its own per run, so runs against one cluster never collide.
		group := "disc" + string(uuid.NewUUID())[:8] + ".example.com"
		crd := namespacedCRD(group, "widget", "Widget")
		_, err := ext.ApiextensionsV1().CustomResourceDefinitions().Create(ctx, crd, metav1.CreateOptions{})
		gomega.Expect(err).NotTo(gomega.HaveOccurred())
		ginkgo.DeferCleanup(func(ctx context.Context) {
			// Gone already unless the spec failed; leave an external cluster as it was.
			_ = ext.ApiextensionsV1().CustomResourceDefinitions().Delete(ctx, crd.Name, metav1.DeleteOptions{})
		})
		for _, s := range []*harness.Server{a, b} {
			gomega.Eventually(ctx, func(g gomega.Gomega) {
				_, _, list, err := aggregatedAPIs(s, acceptAggregated)
				g.Expect(err).NotTo(gomega.HaveOccurred())
				g.Expect(groupCount(list, group)).To(gomega.Equal(1))
				g.Expect(versionFreshness(list, group, "v1")).To(gomega.Equal(apidiscoveryv2.DiscoveryFreshnessCurrent))
			}).WithTimeout(30*time.Second).WithPolling(500*time.Millisecond).Should(gomega.Succeed(), "CRD in %s's discovery", s.Opts.Name)
		}
		// Each server may hold the other's document listing the CRD: it must
		// not bring the CRD back.
		start := time.Now()
		gomega.Expect(ext.ApiextensionsV1().CustomResourceDefinitions().Delete(ctx, crd.Name, metav1.DeleteOptions{})).To(gomega.Succeed())
		for _, s := range []*harness.Server{a, b} {
			gomega.Eventually(ctx, func(g gomega.Gomega) {
				_, _, list, err := aggregatedAPIs(s, acceptAggregated)
				g.Expect(err).NotTo(gomega.HaveOccurred())
				g.Expect(groupCount(list, group)).To(gomega.BeZero())
			}).WithTimeout(15*time.Second).WithPolling(200*time.Millisecond).Should(gomega.Succeed(), "deleted CRD gone from %s", s.Opts.Name)
		}
		ginkgo.GinkgoWriter.Printf("deleted CRD gone from A's and B's merged discovery after %s\n", time.Since(start).Round(time.Millisecond))
		// And it stays gone: no peer document brings it back.
		gomega.Consistently(ctx, func(g gomega.Gomega) {
			for _, s := range []*harness.Server{a, b} {
				_, _, list, err := aggregatedAPIs(s, acceptAggregated)
				g.Expect(err).NotTo(gomega.HaveOccurred())
				g.Expect(groupCount(list, group)).To(gomega.BeZero())
			}
		}).WithTimeout(12 * time.Second).WithPolling(time.Second).Should(gomega.Succeed())
	})

	ginkgo.Context("with a real kube-controller-manager connected only to A", ginkgo.Ordered, func() {
		ginkgo.BeforeAll(func(ctx context.Context) {
			kcm, err := harness.StartControllerManager(binDir, workDir, "disc-kcm", a, "namespace", "garbagecollector")
			gomega.Expect(err).NotTo(gomega.HaveOccurred())
			ginkgo.DeferCleanup(func() { _ = kcm.Stop(20 * time.Second) })
		})

		ginkgo.It("deletes a namespace holding a Job: the Job and the namespace both go", func(ctx context.Context) {
			const ns = "disc-doomed"
			_, err := ca.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{})
			gomega.Expect(err).NotTo(gomega.HaveOccurred())
			_, err = ca.BatchV1().Jobs(ns).Create(ctx, newJob("inside"), metav1.CreateOptions{})
			gomega.Expect(err).NotTo(gomega.HaveOccurred())
			gomega.Expect(ca.CoreV1().Namespaces().Delete(ctx, ns, metav1.DeleteOptions{})).To(gomega.Succeed())

			cb := b.Client()
			gomega.Eventually(ctx, func(g gomega.Gomega) {
				_, err := cb.BatchV1().Jobs(ns).Get(ctx, "inside", metav1.GetOptions{})
				g.Expect(apierrors.IsNotFound(err)).To(gomega.BeTrue(), "Job still there: %v", err)
				_, err = cb.CoreV1().Namespaces().Get(ctx, ns, metav1.GetOptions{})
				g.Expect(apierrors.IsNotFound(err)).To(gomega.BeTrue(), "namespace still there: %v", err)
			}).WithTimeout(2 * time.Minute).WithPolling(time.Second).Should(gomega.Succeed())
			// It did so as kubeadm runs it: with its own ServiceAccount's token.
			_, err = cb.CoreV1().ServiceAccounts(metav1.NamespaceSystem).Get(ctx, "namespace-controller", metav1.GetOptions{})
			gomega.Expect(err).NotTo(gomega.HaveOccurred(), "the namespace controller's ServiceAccount")
		})

		ginkgo.It("garbage-collects a ConfigMap whose Job owner never existed and keeps one owned by a live Job", func(ctx context.Context) {
			const ns = "disc-gc"
			_, err := ca.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{})
			gomega.Expect(err).NotTo(gomega.HaveOccurred())
			ginkgo.DeferCleanup(func(ctx context.Context) {
				// Leave an external cluster as it was.
				_ = ca.CoreV1().Namespaces().Delete(ctx, ns, metav1.DeleteOptions{})
			})
			owner, err := ca.BatchV1().Jobs(ns).Create(ctx, newJob("owner"), metav1.CreateOptions{})
			gomega.Expect(err).NotTo(gomega.HaveOccurred())
			ownedBy := func(name string, uid types.UID) *corev1.ConfigMap {
				return &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: name + "-cm", OwnerReferences: []metav1.OwnerReference{{
					APIVersion: "batch/v1", Kind: "Job", Name: name, UID: uid,
				}}}}
			}
			cms := ca.CoreV1().ConfigMaps(ns)
			_, err = cms.Create(ctx, ownedBy("owner", owner.UID), metav1.CreateOptions{})
			gomega.Expect(err).NotTo(gomega.HaveOccurred())
			_, err = cms.Create(ctx, ownedBy("ghost", uuid.NewUUID()), metav1.CreateOptions{})
			gomega.Expect(err).NotTo(gomega.HaveOccurred())

			gomega.Eventually(ctx, func(g gomega.Gomega) {
				_, err := cms.Get(ctx, "ghost-cm", metav1.GetOptions{})
				g.Expect(apierrors.IsNotFound(err)).To(gomega.BeTrue(), "dependent of a missing Job still there: %v", err)
			}).WithTimeout(2 * time.Minute).WithPolling(time.Second).Should(gomega.Succeed())
			gomega.Consistently(ctx, func(g gomega.Gomega) {
				_, err := cms.Get(ctx, "owner-cm", metav1.GetOptions{})
				g.Expect(err).NotTo(gomega.HaveOccurred())
			}).WithTimeout(10 * time.Second).WithPolling(time.Second).Should(gomega.Succeed())
		})
	})

	ginkgo.It("after kill -9 of B, A still lists batch (Stale) and a Job GET answers 503, not 404", ginkgo.Label(labelHarness), func(ctx context.Context) {
		idB, err := b.ID(ctx)
		gomega.Expect(err).NotTo(gomega.HaveOccurred())
		// B back after the spec: started again, and read by A's discovery.
		ginkgo.DeferCleanup(func(ctx context.Context) {
			b, _ = revive(ctx, b)
			batchListed(ctx)
		})
		b.Kill()
		gomega.Eventually(ctx, func(g gomega.Gomega) {
			_, _, list, err := aggregatedAPIs(a, acceptAggregated)
			g.Expect(err).NotTo(gomega.HaveOccurred())
			g.Expect(versionFreshness(list, "batch", "v1")).To(gomega.Equal(apidiscoveryv2.DiscoveryFreshnessStale))
		}).WithTimeout(60 * time.Second).WithPolling(time.Second).Should(gomega.Succeed())

		resp, body, err := adminGet(a, "/apis/batch/v1/namespaces/default/jobs/anything", nil)
		gomega.Expect(err).NotTo(gomega.HaveOccurred())
		gomega.Expect(resp.StatusCode).To(gomega.Equal(http.StatusServiceUnavailable), string(body))

		gomega.Expect(resp.Header.Get("Retry-After")).NotTo(gomega.BeEmpty())

		groups, err := ca.Discovery().ServerGroups()
		gomega.Expect(err).NotTo(gomega.HaveOccurred())
		found := false
		for _, g := range groups.Groups {
			found = found || g.Name == "batch"
		}
		gomega.Expect(found).To(gomega.BeTrue(), "unaggregated /apis still lists batch")

		// The debug document shows B's discovery data as held but not fresh.
		d, err := debugDocument(a)
		gomega.Expect(err).NotTo(gomega.HaveOccurred())
		gomega.Expect(d.Discovery).NotTo(gomega.BeNil())
		gomega.Expect(d.Discovery.Peers).To(gomega.ContainElement(gomega.And(
			gomega.HaveField("ID", idB), gomega.HaveField("Fresh", false), gomega.HaveField("HasData", true))))
	})
})
