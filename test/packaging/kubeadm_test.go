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

package packaging

import (
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/yaml"
)

// renderManifest runs hack/kubeadm/render.sh for a node, then upstream's
// kubeadm on its output, and returns the kube-apiserver static Pod kubeadm
// wrote. kubeadm runs in a private mount namespace whose /etc is a copy on
// a tmpfs, so it writes /etc/kubernetes/manifests there and the host's
// /etc/kubernetes is never touched.
func renderManifest(t *testing.T, nodeIP, nodePort, image string) (*corev1.Pod, string) {
	t.Helper()
	dir := t.TempDir()
	render := exec.Command("../../hack/kubeadm/render.sh", dir)
	render.Env = append(os.Environ(), "NODE_IP="+nodeIP, "NODE_PORT="+nodePort, "MVP_IMAGE="+image, "CONTROL_PLANE_ENDPOINT=cp.mvp.example:6443")
	if out, err := render.CombinedOutput(); err != nil {
		t.Fatalf("render.sh: %v\n%s", err, out)
	}
	etc := t.TempDir()
	script := `set -e
mount -t tmpfs tmpfs "$1"
cp -a /etc/. "$1"/
mkdir -p "$1/kubernetes"
mount --bind "$1" /etc
"$2" init phase control-plane apiserver --config "$3" >&2
cat /etc/kubernetes/manifests/kube-apiserver.yaml`
	ns := []string{"unshare", "--mount", "--propagation", "private"}
	if os.Geteuid() != 0 {
		ns = []string{"unshare", "--user", "--map-root-user", "--mount", "--propagation", "private"}
	}
	args := append(ns[1:], "sh", "-c", script, "sh", etc, filepath.Join(binDir, "kubeadm"), filepath.Join(dir, "kubeadm-config.yaml"))
	out := run(t, ns[0], args...)
	var pod corev1.Pod
	if err := yaml.UnmarshalStrict(out, &pod); err != nil {
		t.Fatalf("kubeadm's manifest: %v\n%s", err, out)
	}
	return &pod, string(out)
}

func TestKubeadmRendersOurImageAndFlags(t *testing.T) {
	need(t, filepath.Join(binDir, "kubeadm"), "unshare")
	hostHad := exists("/etc/kubernetes/manifests/kube-apiserver.yaml")
	const image = "registry.mvp.example/kube-apiserver:v1.37.2-mvp"
	for _, node := range []struct{ ip, port string }{{"10.0.0.11", "6443"}, {"10.0.0.12", "7443"}} {
		t.Run(node.ip, func(t *testing.T) {
			pod, raw := renderManifest(t, node.ip, node.port, image)
			if len(pod.Spec.Containers) != 1 {
				t.Fatalf("%d containers", len(pod.Spec.Containers))
			}
			c := pod.Spec.Containers[0]
			if c.Image != image {
				t.Errorf("image %q, want %q", c.Image, image)
			}
			for _, flag := range []string{
				"--feature-gates=UnknownVersionInteroperabilityProxy=true",
				"--peer-ca-file=/etc/kubernetes/pki/ca.crt",
				"--peer-advertise-ip=" + node.ip,
				"--peer-advertise-port=" + node.port,
				"--advertise-address=" + node.ip,
				"--secure-port=" + node.port,
				// The front-proxy client kubeadm provides: what the proxy presents to peers.
				"--proxy-client-cert-file=/etc/kubernetes/pki/front-proxy-client.crt",
				"--proxy-client-key-file=/etc/kubernetes/pki/front-proxy-client.key",
				"--requestheader-client-ca-file=/etc/kubernetes/pki/front-proxy-ca.crt",
				"--requestheader-username-headers=X-Remote-User",
				"--requestheader-group-headers=X-Remote-Group",
				"--requestheader-extra-headers-prefix=X-Remote-Extra-",
			} {
				if !slices.Contains(c.Command, flag) {
					t.Errorf("command has no %s", flag)
				}
			}
			if sc := c.SecurityContext; sc == nil || sc.RunAsUser == nil || *sc.RunAsUser != 0 {
				t.Errorf("securityContext %+v, want runAsUser 0 (kubeadm's keys are root's)", sc)
			}
			// The CA the peer flag names is mounted into the Pod.
			mounted := false
			for _, m := range c.VolumeMounts {
				mounted = mounted || m.MountPath == "/etc/kubernetes/pki"
			}
			if !mounted {
				t.Error("/etc/kubernetes/pki is not mounted")
			}
			t.Logf("rendered command line:\n  %s\n  image: %s", strings.Join(c.Command, " \\\n    "), c.Image)
			if testing.Verbose() && node.ip == "10.0.0.11" {
				t.Logf("manifest:\n%s", raw)
			}
		})
	}
	if !hostHad && exists("/etc/kubernetes/manifests/kube-apiserver.yaml") {
		t.Error("kubeadm wrote to the host's /etc/kubernetes")
	}
}

func TestKubeadmRenderRejectsBadInput(t *testing.T) {
	for _, tc := range []struct {
		env  []string
		want string
	}{
		{[]string{"NODE_IP=10.0.0.300x", "MVP_IMAGE=r/k:v", "CONTROL_PLANE_ENDPOINT=cp:6443"}, "NODE_IP=10.0.0.300x is not an IP address"},
		{[]string{"NODE_IP=10.0.0.1", "NODE_PORT=70000", "MVP_IMAGE=r/k:v", "CONTROL_PLANE_ENDPOINT=cp:6443"}, "NODE_PORT=70000 is not a port"},
		{[]string{"NODE_IP=10.0.0.1", "MVP_IMAGE=kube-apiserver", "CONTROL_PLANE_ENDPOINT=cp:6443"}, "MVP_IMAGE=kube-apiserver is not an image reference"},
		{[]string{"NODE_IP=10.0.0.1", "MVP_IMAGE=r/k:v"}, "CONTROL_PLANE_ENDPOINT"},
	} {
		dir := filepath.Join(t.TempDir(), "out")
		cmd := exec.Command("../../hack/kubeadm/render.sh", dir)
		cmd.Env = append([]string{"PATH=" + os.Getenv("PATH")}, tc.env...)
		out, err := cmd.CombinedOutput()
		if err == nil || !strings.Contains(string(out), tc.want) {
			t.Errorf("%v: got %v %q, want an error containing %q", tc.env, err, out, tc.want)
		}
		if exists(dir) {
			t.Errorf("%v: wrote %s despite the error", tc.env, dir)
		}
	}
}

func exists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}

// hack/kind/roll.sh patches each kind node's kubeadm-made manifest with
// `kubectl patch --local` and hack/kind/patches; the same kubectl (built
// from the pinned module) on a manifest kubeadm rendered gives our image,
// run as root, and keeps every other flag.
func TestKindRollPatchTurnsAKubeadmManifestToOurs(t *testing.T) {
	need(t, filepath.Join(binDir, "kubeadm"), filepath.Join(binDir, "kubectl"), "unshare")
	_, ref, _ := theImage(t)
	_, raw := renderManifest(t, "172.18.0.3", "6443", "registry.k8s.io/kube-apiserver:v1.37.2")
	manifest := filepath.Join(t.TempDir(), "kube-apiserver.yaml")
	if err := os.WriteFile(manifest, []byte(raw), 0o600); err != nil {
		t.Fatal(err)
	}
	out := run(t, filepath.Join(binDir, "kubectl"), "patch", "--local", "-f", manifest, "--type", "json",
		"--patch-file", "../../hack/kind/patches/kube-apiserver+json.yaml", "-o", "yaml")
	var pod corev1.Pod
	if err := yaml.UnmarshalStrict(out, &pod); err != nil {
		t.Fatal(err)
	}
	c := pod.Spec.Containers[0]
	if want := "docker.io/library/" + ref; c.Image != want {
		t.Errorf("image %q, want %q (what kind load image-archive of make image's tarball names it)", c.Image, want)
	}
	if sc := c.SecurityContext; sc == nil || sc.RunAsUser == nil || *sc.RunAsUser != 0 {
		t.Errorf("securityContext %+v, want runAsUser 0", sc)
	}
	for _, flag := range []string{"--peer-ca-file=/etc/kubernetes/pki/ca.crt", "--advertise-address=172.18.0.3", "--feature-gates=UnknownVersionInteroperabilityProxy=true"} {
		if !slices.Contains(c.Command, flag) {
			t.Errorf("command lost %s", flag)
		}
	}
}
