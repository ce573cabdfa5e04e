// Command localcluster starts the local mixed-version cluster of `make run`:
// etcd, an "old" kube-apiserver (emulating the previous minor, batch/v1
// disabled) and a "new" one, each in its own UTS namespace, with PKI made
// in Go and kubeconfigs written under -out. It then asks the old server
// for a Job, a resource only the new server serves, and shows the answer.
// Ctrl-C stops every process it started; files stay for inspection.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	apidiscoveryv2 "k8s.io/api/apidiscovery/v2"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/mvp-apiserver/kube-apiserver/test/e2e/harness"
)

func main() {
	binDir := flag.String("bin-dir", "_output/bin", "folder with kube-apiserver and etcd")
	out := flag.String("out", "_output/local", "folder for PKI, data, logs and kubeconfigs (emptied first)")
	oldVersion := flag.String("old-emulated-version", "1.36", "--emulated-version of the old server")
	oldRuntimeConfig := flag.String("old-runtime-config", "batch/v1=false", "--runtime-config of the old server, to make the skew obvious")
	flag.Parse()

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, *binDir, *out, *oldVersion, *oldRuntimeConfig); err != nil {
		fmt.Fprintln(os.Stderr, "localcluster:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, binDir, out, oldVersion, oldRuntimeConfig string) error {
	binDir, _ = filepath.Abs(binDir)
	out, _ = filepath.Abs(out)
	// Only our own output folder is emptied: it holds the last run's cluster.
	if err := os.RemoveAll(out); err != nil {
		return err
	}
	step("Starting etcd and writing the PKI under %s", out)
	c, err := harness.NewCluster(ctx, binDir, out)
	if err != nil {
		return err
	}
	defer func() {
		step("Stopping every process this run started")
		c.Stop()
		fmt.Printf("Logs, PKI and kubeconfigs stay in %s\n", out)
	}()

	step("Starting the old server (--emulated-version=%s --runtime-config=%s) and the new server", oldVersion, oldRuntimeConfig)
	oldArgs := []string{"--emulated-version=" + oldVersion}
	if oldRuntimeConfig != "" {
		oldArgs = append(oldArgs, "--runtime-config="+oldRuntimeConfig)
	}
	type started struct {
		s   *harness.Server
		err error
	}
	oldCh, newCh := make(chan started, 1), make(chan started, 1)
	go func() {
		s, err := c.StartServer(ctx, harness.ServerOptions{Name: "apiserver-old", IP: "127.0.0.101", Port: 6443, Args: oldArgs})
		oldCh <- started{s, err}
	}()
	go func() {
		s, err := c.StartServer(ctx, harness.ServerOptions{Name: "apiserver-new", IP: "127.0.0.102", Port: 6443})
		newCh <- started{s, err}
	}()
	o, n := <-oldCh, <-newCh
	if o.err != nil {
		return fmt.Errorf("old server: %w", o.err)
	}
	if n.err != nil {
		return fmt.Errorf("new server: %w", n.err)
	}
	oldS, newS := o.s, n.s

	for _, s := range []*harness.Server{oldS, newS} {
		kc := filepath.Join(out, s.Opts.Name+".kubeconfig")
		if err := s.WriteKubeconfig(kc); err != nil {
			return err
		}
		id, _ := s.ID(ctx)
		fmt.Printf("  %-14s %s  identity %s\n  %-14s kubeconfig %s\n  %-14s log %s\n", s.Opts.Name, s.URL, id, "", kc, "", s.LogPath)
	}

	if err := demo(ctx, oldS, newS); err != nil {
		return err
	}
	step("Cluster is running. Try: kubectl --kubeconfig %s get jobs -A    (Ctrl-C stops it)", filepath.Join(out, "apiserver-old.kubeconfig"))
	<-ctx.Done()
	return nil
}

// demo creates a Job on the new server and reads it through the old one.
func demo(ctx context.Context, oldS, newS *harness.Server) error {
	step("Demo: create Job demo/hello on the new server, then GET it through the old server, which does not serve batch/v1")
	nc := newS.Client()
	if _, err := nc.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "demo"}}, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		return err
	}
	job := &batchv1.Job{
		ObjectMeta: metav1.ObjectMeta{Name: "hello", Namespace: "demo"},
		Spec: batchv1.JobSpec{Template: corev1.PodTemplateSpec{Spec: corev1.PodSpec{
			RestartPolicy: corev1.RestartPolicyNever,
			Containers:    []corev1.Container{{Name: "hello", Image: "busybox", Command: []string{"echo", "hello"}}},
		}}},
	}
	if _, err := nc.BatchV1().Jobs("demo").Create(ctx, job, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		return err
	}

	// Wait until the old server knows where batch/v1 lives (registration).
	deadline := time.Now().Add(60 * time.Second)
	var last string
	for time.Now().Before(deadline) {
		req, _ := newRequest(oldS.URL + "/apis/batch/v1/namespaces/demo/jobs/hello")
		resp, err := oldS.HTTPClient().Do(req)
		if err == nil {
			last = fmt.Sprintf("HTTP %d, %s: %s", resp.StatusCode, headerLine(resp.Header), readShort(resp))
			if resp.StatusCode == 200 {
				fmt.Printf("  GET %s/apis/batch/v1/namespaces/demo/jobs/hello\n  -> %s\n", oldS.URL, last)
				return showDiscovery(oldS)
			}
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(time.Second):
		}
	}
	fmt.Printf("  GET %s/apis/batch/v1/namespaces/demo/jobs/hello\n  -> %s\n", oldS.URL, last)
	fmt.Println("  The old server did not answer 200: see its log for why.")
	return nil
}

// showDiscovery prints whether the old server's own and merged discovery
// list batch/v1.
func showDiscovery(oldS *harness.Server) error {
	step("Discovery on the old server: its own view (profile=nopeer) and the merged one every client sees")
	const accept = "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList"
	for _, v := range []struct{ label, accept string }{{"own (profile=nopeer)", accept + ";profile=nopeer"}, {"merged", accept}} {
		req, err := newRequest(oldS.URL + "/apis")
		if err != nil {
			return err
		}
		req.Header.Set("Accept", v.accept)
		resp, err := oldS.HTTPClient().Do(req)
		if err != nil {
			return err
		}
		var list apidiscoveryv2.APIGroupDiscoveryList
		err = json.NewDecoder(resp.Body).Decode(&list)
		resp.Body.Close()
		if err != nil {
			return fmt.Errorf("decoding %s /apis: %w", v.label, err)
		}
		state := "not listed"
		for _, g := range list.Items {
			for _, ver := range g.Versions {
				if g.Name == "batch" && ver.Version == "v1" {
					state = "listed (" + string(ver.Freshness) + ")"
				}
			}
		}
		fmt.Printf("  GET %s/apis  %-22s %d groups, batch/v1 %s\n", oldS.URL, v.label+":", len(list.Items), state)
	}
	return nil
}

func step(format string, args ...any) {
	fmt.Printf("\n==> "+format+"\n", args...)
}

func headerLine(h map[string][]string) string {
	var parts []string
	for _, k := range []string{"Content-Type", "Retry-After"} {
		if v, ok := h[k]; ok {
			parts = append(parts, k+"="+strings.Join(v, ","))
		}
	}
	return strings.Join(parts, " ")
}

func newRequest(url string) (*http.Request, error) {
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", "application/json")
	return req, nil
}

// readShort reads at most 300 bytes of the body, on one line.
func readShort(resp *http.Response) string {
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 300))
	return strings.Join(strings.Fields(string(b)), " ")
}
