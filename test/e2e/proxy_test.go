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
	"time"

	"github.com/onsi/ginkgo/v2"
	"github.com/onsi/gomega"
	batchv1 "k8s.io/api/batch/v1"
	apiextensionsclient "k8s.io/apiextensions-apiserver/pkg/client/clientset/clientset"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes"
	apiregistrationv1 "k8s.io/kube-aggregator/pkg/apis/apiregistration/v1"
	aggregatorclient "k8s.io/kube-aggregator/pkg/client/clientset_generated/clientset"

	"github.com/mvp-apiserver/kube-apiserver/pkg/controlplane/peerproxy/peerclient"
	"github.com/mvp-apiserver/kube-apiserver/test/e2e/harness"
)

var _ = ginkgo.Describe("[Feature:MixedVersionProxy] proxying", ginkgo.Ordered, ginkgo.ContinueOnFailure, ginkgo.Label(labelHarness), func() {
	const ns = "proxy"
	var a, b *harness.Server
	var ca, cb kubernetes.Interface
	jobPath := "/apis/batch/v1/namespaces/" + ns + "/jobs/"

	ginkgo.BeforeAll(func(ctx context.Context) {
		a, b, _ = startProxyPair(ctx, harness.ServerOptions{Name: "px-a", IP: "127.0.0.51"}, harness.ServerOptions{Name: "px-b", IP: "127.0.0.52"}, ns)
		// b, not the B started here: a spec may have replaced it.
		ginkgo.DeferCleanup(func() { a.Stop(30 * time.Second); b.Stop(30 * time.Second) })
		ca, cb = a.Client(), b.Client()
	})

	ginkgo.It("creates, reads, patches, lists and deletes Jobs through the server that lacks batch/v1", func(ctx context.Context) {
		jobs := ca.BatchV1().Jobs(ns)
		created, err := jobs.Create(ctx, newJob("crud"), metav1.CreateOptions{})
		gomega.Expect(err).NotTo(gomega.HaveOccurred())
		gomega.Expect(created.UID).NotTo(gomega.BeEmpty())

		got, err := jobs.Get(ctx, "crud", metav1.GetOptions{})
		gomega.Expect(err).NotTo(gomega.HaveOccurred())
		gomega.Expect(got.UID).To(gomega.Equal(created.UID))

		for _, p := range []struct {
			pt   types.PatchType
			body string
		}{
			{types.StrategicMergePatchType, `{"metadata":{"labels":{"smp":"yes"}}}`},
			{types.MergePatchType, `{"metadata":{"labels":{"merge":"yes"}}}`},
			{types.JSONPatchType, `[{"op":"add","path":"/metadata/labels/json","value":"yes"}]`},
			{types.ApplyPatchType, `{"apiVersion":"batch/v1","kind":"Job","metadata":{"name":"crud","labels":{"apply":"yes"}}}`},
		} {
			opts := metav1.PatchOptions{}
			if p.pt == types.ApplyPatchType {
				opts.FieldManager = "e2e"
			}
			_, err := jobs.Patch(ctx, "crud", p.pt, []byte(p.body), opts)
			gomega.Expect(err).NotTo(gomega.HaveOccurred(), "patch %s", p.pt)
		}
		onB, err := cb.BatchV1().Jobs(ns).Get(ctx, "crud", metav1.GetOptions{})
		gomega.Expect(err).NotTo(gomega.HaveOccurred())
		gomega.Expect(onB.Labels).To(gomega.HaveKeyWithValue("smp", "yes"))
		gomega.Expect(onB.Labels).To(gomega.HaveKeyWithValue("merge", "yes"))
		gomega.Expect(onB.Labels).To(gomega.HaveKeyWithValue("json", "yes"))
		gomega.Expect(onB.Labels).To(gomega.HaveKeyWithValue("apply", "yes"))

		list, err := jobs.List(ctx, metav1.ListOptions{})
		gomega.Expect(err).NotTo(gomega.HaveOccurred())
		gomega.Expect(list.Items).To(gomega.HaveLen(1))

		// A subresource, and protobuf both ways.
		status := &batchv1.Job{}
		err = ca.BatchV1().RESTClient().Get().Namespace(ns).Resource("jobs").Name("crud").SubResource("status").Do(ctx).Into(status)
		gomega.Expect(err).NotTo(gomega.HaveOccurred())
		gomega.Expect(status.Name).To(gomega.Equal("crud"))
		resp, body, err := adminGet(a, jobPath+"crud", map[string]string{"Accept": "application/vnd.kubernetes.protobuf"})
		gomega.Expect(err).NotTo(gomega.HaveOccurred())
		gomega.Expect(resp.StatusCode).To(gomega.Equal(200))
		gomega.Expect(resp.Header.Get("Content-Type")).To(gomega.Equal("application/vnd.kubernetes.protobuf"))
		gomega.Expect(string(body)).To(gomega.HavePrefix("k8s\x00"))

		// CBOR: through A the answer is exactly what B gives directly.
		cbor := map[string]string{"Accept": "application/cbor"}
		direct, directBody, err := adminGet(b, jobPath+"crud", cbor)
		gomega.Expect(err).NotTo(gomega.HaveOccurred())
		proxied, proxiedBody, err := adminGet(a, jobPath+"crud", cbor)
		gomega.Expect(err).NotTo(gomega.HaveOccurred())
		gomega.Expect(proxied.StatusCode).To(gomega.Equal(direct.StatusCode))
		gomega.Expect(proxied.Header.Get("Content-Type")).To(gomega.Equal(direct.Header.Get("Content-Type")))
		if direct.StatusCode == 200 {
			gomega.Expect(proxiedBody).To(gomega.Equal(directBody))
		}

		// A large body both ways (200 KiB annotation, under the 256 KiB limit).
		big := newJob("big")
		big.Annotations = map[string]string{"payload": strings.Repeat("x", 200<<10)}
		_, err = jobs.Create(ctx, big, metav1.CreateOptions{})
		gomega.Expect(err).NotTo(gomega.HaveOccurred())
		gotBig, err := jobs.Get(ctx, "big", metav1.GetOptions{})
		gomega.Expect(err).NotTo(gomega.HaveOccurred())
		gomega.Expect(gotBig.Annotations["payload"]).To(gomega.HaveLen(200 << 10))

		// Background: the default for Jobs orphans, which waits for a garbage
		// collector this spec does not run.
		background := metav1.DeletePropagationBackground
		_, err = jobs.Create(ctx, newJob("crud-2"), metav1.CreateOptions{})
		gomega.Expect(err).NotTo(gomega.HaveOccurred())
		gomega.Expect(jobs.Delete(ctx, "crud", metav1.DeleteOptions{PropagationPolicy: &background})).To(gomega.Succeed())
		gomega.Expect(jobs.DeleteCollection(ctx, metav1.DeleteOptions{PropagationPolicy: &background}, metav1.ListOptions{})).To(gomega.Succeed())
		gomega.Eventually(ctx, func() int {
			l, err := cb.BatchV1().Jobs(ns).List(ctx, metav1.ListOptions{})
			if err != nil {
				return -1
			}
			return len(l.Items)
		}).WithTimeout(30 * time.Second).Should(gomega.Equal(0))
	})

	ginkgo.It("streams a watch through the server that lacks batch/v1", func(ctx context.Context) {
		w, err := ca.BatchV1().Jobs(ns).Watch(ctx, metav1.ListOptions{})
		gomega.Expect(err).NotTo(gomega.HaveOccurred())
		defer w.Stop()
		_, err = cb.BatchV1().Jobs(ns).Create(ctx, newJob("watched"), metav1.CreateOptions{})
		gomega.Expect(err).NotTo(gomega.HaveOccurred())
		select {
		case ev := <-w.ResultChan():
			gomega.Expect(ev.Type).To(gomega.Equal(watch.Added))
			gomega.Expect(ev.Object.(*batchv1.Job).Name).To(gomega.Equal("watched"))
		case <-time.After(10 * time.Second):
			ginkgo.Fail("no watch event through the proxy within 10s")
		}
	})

	ginkgo.It("serves locally (a 404) a request already marked as rerouted", func(ctx context.Context) {
		ensureJob(ctx, cb, ns, "watched")
		for _, h := range []string{peerclient.HeaderRerouted, peerclient.HeaderPeerProxied} {
			resp, _, err := adminGet(a, jobPath+"watched", map[string]string{h: "true"})
			gomega.Expect(err).NotTo(gomega.HaveOccurred())
			gomega.Expect(resp.StatusCode).To(gomega.Equal(404), "with %s", h)
		}
		resp, _, err := adminGet(a, jobPath+"watched", nil)
		gomega.Expect(err).NotTo(gomega.HaveOccurred())
		gomega.Expect(resp.StatusCode).To(gomega.Equal(200), "the same request without the marker is proxied")
	})

	ginkgo.It("serves here non-resource requests, a CRD's and an aggregated API's resources, and unknown resources (Decide's rules 1, 3 and 6)", func(ctx context.Context) {
		total := func() float64 {
			n, err := metricSum(a, "apiserver_rerouted_request_total")
			gomega.Expect(err).NotTo(gomega.HaveOccurred())
			return n
		}
		before := total()

		// 1. Not a resource request.
		resp, body, err := adminGet(a, "/version", nil)
		gomega.Expect(err).NotTo(gomega.HaveOccurred())
		gomega.Expect(resp.StatusCode).To(gomega.Equal(200), string(body))

		// 3. A CRD's resources, served by every server alike.
		ext := apiextensionsclient.NewForConfigOrDie(b.RESTConfig())
		crd := namespacedCRD("px.example.com", "gadget", "Gadget")
		_, err = ext.ApiextensionsV1().CustomResourceDefinitions().Create(ctx, crd, metav1.CreateOptions{})
		gomega.Expect(err).NotTo(gomega.HaveOccurred())
		gomega.Eventually(ctx, func(g gomega.Gomega) {
			resp, body, err := adminGet(a, "/apis/px.example.com/v1/namespaces/"+ns+"/gadgets", nil)
			g.Expect(err).NotTo(gomega.HaveOccurred())
			g.Expect(resp.StatusCode).To(gomega.Equal(200), string(body))
		}).WithTimeout(30 * time.Second).WithPolling(250 * time.Millisecond).Should(gomega.Succeed())
		crdRerouted, err := metricSum(a, "apiserver_rerouted_request_total", `group="px.example.com"`)
		gomega.Expect(err).NotTo(gomega.HaveOccurred())
		gomega.Expect(crdRerouted).To(gomega.BeZero(), "a CRD's requests are never proxied")

		// 3. An aggregated API (an APIService backed by a service): the
		// aggregator here answers (503, its backend does not exist), never a peer.
		agg := aggregatorclient.NewForConfigOrDie(b.RESTConfig())
		port := int32(443)
		_, err = agg.ApiregistrationV1().APIServices().Create(ctx, &apiregistrationv1.APIService{
			ObjectMeta: metav1.ObjectMeta{Name: "v1.agg.px.example.com"},
			Spec: apiregistrationv1.APIServiceSpec{
				Group: "agg.px.example.com", Version: "v1",
				Service:               &apiregistrationv1.ServiceReference{Namespace: "default", Name: "no-such-backend", Port: &port},
				InsecureSkipTLSVerify: true, GroupPriorityMinimum: 1000, VersionPriority: 15,
			},
		}, metav1.CreateOptions{})
		gomega.Expect(err).NotTo(gomega.HaveOccurred())
		gomega.Eventually(ctx, func(g gomega.Gomega) {
			resp, body, err := adminGet(a, "/apis/agg.px.example.com/v1/namespaces/"+ns+"/things", nil)
			g.Expect(err).NotTo(gomega.HaveOccurred())
			g.Expect(resp.StatusCode).To(gomega.Equal(503), string(body))
		}).WithTimeout(30 * time.Second).WithPolling(250 * time.Millisecond).Should(gomega.Succeed())
		aggRerouted, err := metricSum(a, "apiserver_rerouted_request_total", `group="agg.px.example.com"`)
		gomega.Expect(err).NotTo(gomega.HaveOccurred())
		gomega.Expect(aggRerouted).To(gomega.BeZero(), "an aggregated API's requests are never proxied")
		gomega.Expect(agg.ApiregistrationV1().APIServices().Delete(ctx, "v1.agg.px.example.com", metav1.DeleteOptions{})).To(gomega.Succeed())

		// 6. Resources nobody serves: the normal 404.
		for _, path := range []string{"/apis/nope.example.com/v1/things", "/api/v1/namespaces/" + ns + "/nonexistents"} {
			resp, body, err := adminGet(a, path, nil)
			gomega.Expect(err).NotTo(gomega.HaveOccurred())
			gomega.Expect(resp.StatusCode).To(gomega.Equal(404), "%s: %s", path, body)
		}
		gomega.Expect(total()).To(gomega.Equal(before), "none of these was rerouted")
	})

	ginkgo.It("does not let a caller forge its identity through the proxy", func(ctx context.Context) {
		ensureJob(ctx, cb, ns, "watched")
		certFile, keyFile, err := cluster.PKI.IssueClient("nobody", "nobody")
		gomega.Expect(err).NotTo(gomega.HaveOccurred())
		forged := map[string]string{"X-Remote-User": "kubernetes-admin", "X-Remote-Group": "system:masters",
			"Impersonate-User": "kubernetes-admin"}
		resp, body, err := rawGet(a, certFile, keyFile, jobPath+"watched", forged)
		gomega.Expect(err).NotTo(gomega.HaveOccurred())
		gomega.Expect(resp.StatusCode).To(gomega.Equal(403), string(body))

		// The forged headers are stripped from an authorized caller's request too:
		// B sees the admin, whose request succeeds, never the forged "nobody".
		resp, body, err = adminGet(a, jobPath+"watched", map[string]string{"X-Remote-User": "nobody", "X-Remote-Group": "nobody"})
		gomega.Expect(err).NotTo(gomega.HaveOccurred())
		gomega.Expect(resp.StatusCode).To(gomega.Equal(200), string(body))
	})

	ginkgo.It("answers the normal 404 with the gate off", func(ctx context.Context) {
		off, err := cluster.StartServer(ctx, harness.ServerOptions{Name: "px-off", IP: "127.0.0.55", Gate: harness.On(false),
			Args: []string{"--runtime-config=batch/v1=false"}})
		gomega.Expect(err).NotTo(gomega.HaveOccurred())
		defer off.Stop(30 * time.Second)
		resp, body, err := adminGet(off, jobPath+"watched", nil)
		gomega.Expect(err).NotTo(gomega.HaveOccurred())
		gomega.Expect(resp.StatusCode).To(gomega.Equal(404), fmt.Sprintf("%s", body))
		// Discovery is this server's own: batch/v1 is not listed.
		_, _, list, err := aggregatedAPIs(off, acceptAggregated)
		gomega.Expect(err).NotTo(gomega.HaveOccurred())
		gomega.Expect(versionFreshness(list, "batch", "v1")).To(gomega.BeEmpty())
	})

	ginkgo.It("does not proxy with the gate on but no --peer-ca-file", func(ctx context.Context) {
		noCA, err := cluster.StartServer(ctx, harness.ServerOptions{Name: "px-noca", IP: "127.0.0.56", NoPeerCA: true,
			Args: []string{"--runtime-config=batch/v1=false"}})
		gomega.Expect(err).NotTo(gomega.HaveOccurred())
		defer noCA.Stop(30 * time.Second)
		resp, body, err := adminGet(noCA, jobPath+"watched", nil)
		gomega.Expect(err).NotTo(gomega.HaveOccurred())
		gomega.Expect(resp.StatusCode).To(gomega.Equal(404), string(body))
		// Discovery is this server's own: batch/v1 is not listed.
		_, _, list, err := aggregatedAPIs(noCA, acceptAggregated)
		gomega.Expect(err).NotTo(gomega.HaveOccurred())
		gomega.Expect(versionFreshness(list, "batch", "v1")).To(gomega.BeEmpty())
	})
})
