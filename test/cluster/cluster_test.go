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

// Package cluster runs the real-node harness end to end (make
// test-cluster): make cluster, make cluster-upgrade and make cluster-down
// as a newcomer would, with the faults the harness must name.
package cluster

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// staticPodBound is how long a kube-apiserver static Pod may take from its
// manifest's change until it is Ready: measured 131.5 s to 234.6 s on the
// 2-core machine, most of it the vanilla server's stop
// (docs/upgrade.md#on-real-nodes-measured), with headroom.
const staticPodBound = 300 * time.Second

type env struct {
	bin, out, parts, images, repo string
}

func newEnv(t *testing.T) env {
	t.Helper()
	e := env{bin: os.Getenv("MVP_BIN_DIR"), out: os.Getenv("MVP_CLUSTER_OUT"), parts: os.Getenv("MVP_CLUSTER_PARTS"), images: os.Getenv("MVP_IMAGES_DIR")}
	if e.bin == "" || e.out == "" || e.parts == "" || e.images == "" {
		t.Fatal("MVP_BIN_DIR, MVP_CLUSTER_OUT, MVP_CLUSTER_PARTS and MVP_IMAGES_DIR must be set: run make test-cluster")
	}
	repo, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	e.repo = repo
	return e
}

// cluster runs the harness with the Makefile's arguments; its output goes
// to the test's log and is returned.
func (e env) cluster(t *testing.T, verb string, extra ...string) (string, error) {
	t.Helper()
	args := append([]string{verb, "-bin-dir", e.bin, "-out", e.out, "-parts", e.parts, "-ours", filepath.Join(e.images, "kube-apiserver.tar")}, extra...)
	cmd := exec.Command(filepath.Join(e.bin, "cluster"), args...)
	cmd.Dir = e.repo
	out, err := cmd.CombinedOutput()
	t.Logf("cluster %s %s:\n%s", verb, strings.Join(extra, " "), out)
	return string(out), err
}

// downClean runs cluster down twice and checks that nothing it made is
// left: no network namespace, no process, no mount target, sysctls back.
func (e env) downClean(t *testing.T) {
	t.Helper()
	for i := 0; i < 2; i++ {
		if _, err := e.cluster(t, "down"); err != nil {
			t.Fatalf("cluster down (run %d): %v", i+1, err)
		}
	}
	out, err := exec.Command("ip", "netns", "list").Output()
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(out), "mvpc-") {
		t.Errorf("network namespaces left after cluster down:\n%s", out)
	}
	var st struct {
		Netns       []string
		Pids        map[string]int
		Mountpoints []string
		Cgroups     []string
		Sysctls     map[string]string
	}
	b, err := os.ReadFile(filepath.Join(e.out, "state.json"))
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	if err == nil {
		if err := json.Unmarshal(b, &st); err != nil {
			t.Fatal(err)
		}
		if len(st.Netns)+len(st.Pids)+len(st.Mountpoints)+len(st.Cgroups)+len(st.Sysctls) > 0 {
			t.Errorf("state left after cluster down: %s", b)
		}
	}
	for _, dir := range []string{"/etc/kubernetes", "/opt/mvp", "/var/lib/kubelet"} {
		if _, err := os.Stat(dir); err == nil {
			t.Errorf("%s is left on the machine", dir)
		}
	}
}

func TestUpgradeOnNodes(t *testing.T) {
	e := newEnv(t)
	e.downClean(t)
	t.Cleanup(func() { e.downClean(t) })

	// A second cluster command while one runs fails at once, naming the holder.
	first := exec.Command(filepath.Join(e.bin, "cluster"), "up", "-bin-dir", e.bin, "-out", e.out, "-parts", e.parts,
		"-ours", filepath.Join(e.images, "kube-apiserver.tar"))
	first.Dir = e.repo
	log, err := os.Create(filepath.Join(t.TempDir(), "up.log"))
	if err != nil {
		t.Fatal(err)
	}
	first.Stdout, first.Stderr = log, log
	if err := first.Start(); err != nil {
		t.Fatal(err)
	}
	waitLocked(t, filepath.Join(e.out, "lock"))
	out, err := e.cluster(t, "up")
	if err == nil || !strings.Contains(out, "another cluster command is running") || !strings.Contains(out, "pid") {
		t.Errorf("a second cluster up while one runs: err %v, want the lock's holder named", err)
	}
	upErr := first.Wait()
	b, _ := os.ReadFile(log.Name())
	t.Logf("cluster up:\n%s", b)
	if upErr != nil {
		t.Fatalf("cluster up: %v", upErr)
	}

	if _, err := e.cluster(t, "upgrade", "-fault", "kill-kubelet:cp2"); err != nil {
		t.Fatalf("cluster upgrade: %v", err)
	}
	checkUpgrade(t, filepath.Join(e.out, "upgrade.json"))
}

// waitLocked polls until the harness's lock file names a holder.
func waitLocked(t *testing.T, path string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		if b, err := os.ReadFile(path); err == nil && strings.Contains(string(b), "pid") {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("%s names no holder after 30s", path)
}
