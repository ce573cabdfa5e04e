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

// Command localcluster starts the local mixed-version cluster of `make run`:
// etcd, an "old" kube-apiserver (vanilla v1.36.3, the previous release as
// `make build` builds it) and a "new" one (ours), each in its own UTS
// namespace, with PKI made in Go and kubeconfigs written under -out. It
// then creates a StorageVersionMigration (storagemigration.k8s.io/v1, new
// in 1.37) on the new server, reads it through the old one, and shows the
// answer. Ctrl-C stops every process it started; files stay for inspection.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	apidiscoveryv2 "k8s.io/api/apidiscovery/v2"
	storagemigrationv1 "k8s.io/api/storagemigration/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/mvp-apiserver/kube-apiserver/test/e2e/harness"
)

func main() {
	binDir := flag.String("bin-dir", "_output/bin", "folder with kube-apiserver and etcd")
	out := flag.String("out", "_output/local", "folder for PKI, data, logs and kubeconfigs (emptied first)")
	oldBinary := flag.String("old-binary", "kube-apiserver-previous", "the old server's binary, in -bin-dir (vanilla v1.36.3 from `make build`)")
	flag.Parse()

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, *binDir, *out, *oldBinary); err != nil {
		fmt.Fprintln(os.Stderr, "localcluster:", err)
		os.Exit(1)
	}
}

// run starts etcd and the two servers, shows the demo and waits for ctx
// to end; every process it started is stopped on the way out.
func run(ctx context.Context, binDir, out, oldBinary string) error {
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

	oldBinary = filepath.Join(binDir, oldBinary)
	step("Starting the old server (%s, %s) and the new server (ours)", filepath.Base(oldBinary), binaryVersion(oldBinary))
	oldS, newS, err := startPair(ctx, c, oldBinary)
	if err != nil {
		return err
	}

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
	step("Cluster is running. Try: kubectl --kubeconfig %s get storageversionmigrations    (Ctrl-C stops it)", filepath.Join(out, "apiserver-old.kubeconfig"))
	<-ctx.Done()
	return nil
}

// startPair starts the old server (oldBinary) and the new one (ours) side
// by side.
func startPair(ctx context.Context, c *harness.Cluster, oldBinary string) (*harness.Server, *harness.Server, error) {
	type started struct {
		s   *harness.Server
		err error
	}
	oldCh, newCh := make(chan started, 1), make(chan started, 1)
	go func() {
		s, err := c.StartServer(ctx, harness.ServerOptions{Name: "apiserver-old", IP: "127.0.0.101", Port: 6443, Binary: oldBinary})
		oldCh <- started{s, err}
	}()
	go func() {
		s, err := c.StartServer(ctx, harness.ServerOptions{Name: "apiserver-new", IP: "127.0.0.102", Port: 6443})
		newCh <- started{s, err}
	}()
	o, n := <-oldCh, <-newCh
	if o.err != nil {
		return nil, nil, fmt.Errorf("old server: %w", o.err)
	}
	if n.err != nil {
		return nil, nil, fmt.Errorf("new server: %w", n.err)
	}
	return o.s, n.s, nil
}

// demo creates a StorageVersionMigration on the new server and reads it
// through the old one, which does not serve storagemigration.k8s.io/v1.
func demo(ctx context.Context, oldS, newS *harness.Server) error {
	step("Demo: create StorageVersionMigration demo-configmaps on the new server, then GET it through the old server (vanilla v1.36.3), which does not serve storagemigration.k8s.io/v1")
	svm := &storagemigrationv1.StorageVersionMigration{
		ObjectMeta: metav1.ObjectMeta{Name: "demo-configmaps"},
		Spec:       storagemigrationv1.StorageVersionMigrationSpec{Resource: metav1.GroupResource{Resource: "configmaps"}},
	}
	if _, err := newS.Client().StoragemigrationV1().StorageVersionMigrations().Create(ctx, svm, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		return err
	}

	// Wait until the old server's own proxy knows where the API lives (it
	// learns it from the new server's identity lease and discovery).
	const path = "/apis/storagemigration.k8s.io/v1/storageversionmigrations/demo-configmaps"
	deadline := time.Now().Add(60 * time.Second)
	var last string
	for time.Now().Before(deadline) {
		req, _ := newRequest(oldS.URL + path)
		resp, err := oldS.HTTPClient().Do(req)
		if err == nil {
			last = fmt.Sprintf("HTTP %d, %s: %s", resp.StatusCode, headerLine(resp.Header), readShort(resp))
			if resp.StatusCode == 200 {
				fmt.Printf("  GET %s%s\n  -> %s\n", oldS.URL, path, last)
				return showDiscovery(oldS, newS)
			}
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(time.Second):
		}
	}
	fmt.Printf("  GET %s%s\n  -> %s\n", oldS.URL, path, last)
	fmt.Println("  The old server did not answer 200: see its log for why.")
	return nil
}

// showDiscovery prints whether each server's own and merged discovery list
// storagemigration.k8s.io/v1.
func showDiscovery(servers ...*harness.Server) error {
	step("Discovery: each server's own view (profile=nopeer) and the one clients get by default")
	const accept = "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList"
	for _, s := range servers {
		for _, v := range []struct{ label, accept string }{{"own (profile=nopeer)", accept + ";profile=nopeer"}, {"default", accept}} {
			req, err := newRequest(s.URL + "/apis")
			if err != nil {
				return err
			}
			req.Header.Set("Accept", v.accept)
			resp, err := s.HTTPClient().Do(req)
			if err != nil {
				return err
			}
			var list apidiscoveryv2.APIGroupDiscoveryList
			err = json.NewDecoder(resp.Body).Decode(&list)
			resp.Body.Close()
			if err != nil {
				return fmt.Errorf("decoding %s /apis of %s: %w", v.label, s.Opts.Name, err)
			}
			state := "not listed"
			for _, g := range list.Items {
				for _, ver := range g.Versions {
					if g.Name == "storagemigration.k8s.io" && ver.Version == "v1" {
						state = "listed (" + string(ver.Freshness) + ")"
					}
				}
			}
			fmt.Printf("  %-14s /apis %-22s %d groups, storagemigration.k8s.io/v1 %s\n", s.Opts.Name, v.label+":", len(list.Items), state)
		}
	}
	return nil
}

// binaryVersion is what binary --version prints, or why it could not run.
func binaryVersion(binary string) string {
	out, err := exec.Command(binary, "--version").Output()
	if err != nil {
		return err.Error()
	}
	return strings.TrimSpace(string(out))
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
