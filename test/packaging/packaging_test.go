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

// Package packaging checks what `make image` and the kubeadm recipe
// produce, with independent tools: Debian's skopeo and umoci read the
// image back, and upstream's kubeadm (built from the pinned module)
// renders the kube-apiserver static Pod from hack/kubeadm.
package packaging

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// Inputs, from `make test-packaging`; the defaults fit a plain `go test`
// after `make build image` in the repository root.
var (
	binDir    = dirFromEnv("MVP_BIN_DIR", "../../_output/bin")
	imagesDir = dirFromEnv("MVP_IMAGES_DIR", "../../_output/images")
	imageRef  = os.Getenv("MVP_IMAGE_REF")
)

func dirFromEnv(key, def string) string {
	if v := os.Getenv(key); v != "" {
		return v
	}
	if abs, err := filepath.Abs(def); err == nil {
		return abs
	}
	return def
}

// run runs a command and returns its standard output; a failure fails the test.
func run(t *testing.T, name string, args ...string) []byte {
	t.Helper()
	cmd := exec.Command(name, args...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, stderr.String())
	}
	return out
}

func need(t *testing.T, paths ...string) {
	t.Helper()
	for _, p := range paths {
		if _, err := exec.LookPath(p); err != nil {
			t.Fatalf("%s not found: run `make test-deps` and `make build image` first", p)
		}
	}
}

// theImage returns the image's tag (its name in the OCI layout), its
// repository:tag, and its digest as make image recorded it.
func theImage(t *testing.T) (tag, ref, digest string) {
	t.Helper()
	ref = imageRef
	if ref == "" {
		t.Fatal("MVP_IMAGE_REF is not set: run through `make test-packaging`")
	}
	tag = ref[strings.LastIndex(ref, ":")+1:]
	d, err := os.ReadFile(filepath.Join(imagesDir, "digest"))
	if err != nil {
		t.Fatalf("run `make image` first: %v", err)
	}
	return tag, ref, strings.TrimSpace(string(d))
}

// wantVersion is what our binary in _output/bin says it is.
func wantVersion(t *testing.T) string {
	t.Helper()
	v := strings.TrimSpace(string(run(t, filepath.Join(binDir, "kube-apiserver"), "--version")))
	if !strings.HasPrefix(v, "Kubernetes v1.37.") || !strings.Contains(v, "+mvp.") {
		t.Fatalf("our binary's version is %q, want Kubernetes v1.37.x+mvp.<commit>", v)
	}
	return v
}

func TestSkopeoReadsTheImage(t *testing.T) {
	need(t, "skopeo")
	tag, ref, digest := theImage(t)
	oci := "oci:" + filepath.Join(imagesDir, "oci") + ":" + tag

	var manifest struct {
		MediaType string `json:"mediaType"`
		Config    struct {
			MediaType string `json:"mediaType"`
		} `json:"config"`
		Layers []struct {
			MediaType string `json:"mediaType"`
		} `json:"layers"`
		Annotations map[string]string `json:"annotations"`
	}
	raw := run(t, "skopeo", "inspect", "--raw", oci)
	if err := json.Unmarshal(raw, &manifest); err != nil {
		t.Fatalf("manifest: %v\n%s", err, raw)
	}
	if manifest.MediaType != "application/vnd.oci.image.manifest.v1+json" || manifest.Config.MediaType != "application/vnd.oci.image.config.v1+json" {
		t.Errorf("media types %q / %q, want the OCI manifest and config", manifest.MediaType, manifest.Config.MediaType)
	}
	if len(manifest.Layers) != 1 || manifest.Layers[0].MediaType != "application/vnd.oci.image.layer.v1.tar+gzip" {
		t.Errorf("layers %+v, want one OCI gzip layer", manifest.Layers)
	}
	version := strings.TrimPrefix(wantVersion(t), "Kubernetes ")
	for k, want := range map[string]string{
		"org.opencontainers.image.source":          "https://github.com/mvp-apiserver/kube-apiserver",
		"org.opencontainers.image.version":         version,
		"io.github.mvp-apiserver.upstream-version": version[:strings.Index(version, "+")],
	} {
		if got := manifest.Annotations[k]; got != want {
			t.Errorf("annotation %s = %q, want %q", k, got, want)
		}
	}
	if !strings.Contains(manifest.Annotations["io.github.mvp-apiserver.fork"], "Mixed Version Proxy") {
		t.Errorf("the fork annotation is %q", manifest.Annotations["io.github.mvp-apiserver.fork"])
	}

	var cfg struct {
		OS, Architecture string
		Config           struct {
			User       string
			Entrypoint []string
		} `json:"config"`
	}
	if err := json.Unmarshal(run(t, "skopeo", "inspect", "--config", oci), &cfg); err != nil {
		t.Fatal(err)
	}
	if cfg.OS != "linux" || len(cfg.Config.Entrypoint) != 1 || cfg.Config.Entrypoint[0] != "/usr/local/bin/kube-apiserver" {
		t.Errorf("config %+v, want linux and entrypoint /usr/local/bin/kube-apiserver", cfg)
	}
	if u := cfg.Config.User; u == "" || u == "0" || strings.HasPrefix(u, "0:") || u == "root" {
		t.Errorf("user %q, want a non-root user", u)
	}

	// The docker tarball holds the same image under the requested tag.
	var inspected struct {
		Labels map[string]string
		Layers []string
	}
	tarball := filepath.Join(imagesDir, "kube-apiserver.tar")
	if err := json.Unmarshal(run(t, "skopeo", "inspect", "docker-archive:"+tarball), &inspected); err != nil {
		t.Fatal(err)
	}
	if len(inspected.Layers) != 1 || inspected.Labels["org.opencontainers.image.version"] != version {
		t.Errorf("docker-archive: %d layers, version label %q", len(inspected.Layers), inspected.Labels["org.opencontainers.image.version"])
	}
	run(t, "skopeo", "inspect", "docker-archive:"+tarball+":"+ref) // fails unless the tarball is tagged ref
	t.Logf("%s %s: %d annotations, user %s, entrypoint %v", ref, digest, len(manifest.Annotations), cfg.Config.User, cfg.Config.Entrypoint)
}

func TestUmociUnpacksARunnableBinary(t *testing.T) {
	need(t, "umoci")
	tag, _, _ := theImage(t)
	bundle := filepath.Join(t.TempDir(), "bundle")
	run(t, "umoci", "unpack", "--rootless", "--image", filepath.Join(imagesDir, "oci")+":"+tag, bundle)

	var spec struct {
		Process struct {
			User struct{ UID, GID int } `json:"user"`
			Args []string               `json:"args"`
		} `json:"process"`
	}
	data, err := os.ReadFile(filepath.Join(bundle, "config.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(data, &spec); err != nil {
		t.Fatal(err)
	}
	if spec.Process.User.UID == 0 || len(spec.Process.Args) != 1 || spec.Process.Args[0] != "/usr/local/bin/kube-apiserver" {
		t.Errorf("runtime config: user %+v, args %v; want non-root and the entrypoint", spec.Process.User, spec.Process.Args)
	}
	got := strings.TrimSpace(string(run(t, filepath.Join(bundle, "rootfs", "usr", "local", "bin", "kube-apiserver"), "--version")))
	if want := wantVersion(t); got != want {
		t.Errorf("the unpacked binary says %q, want %q", got, want)
	}
	t.Logf("unpacked binary: %s", got)
}

// Rebuilding the image from the same binary and inputs gives the same
// digest, byte for byte.
func TestImageIsReproducible(t *testing.T) {
	tag, _, digest := theImage(t)
	var cfg struct {
		Config struct {
			Labels map[string]string
		} `json:"config"`
		Architecture string
	}
	need(t, "skopeo")
	oci := "oci:" + filepath.Join(imagesDir, "oci") + ":" + tag
	if err := json.Unmarshal(run(t, "skopeo", "inspect", "--config", oci), &cfg); err != nil {
		t.Fatal(err)
	}
	l := cfg.Config.Labels
	out := t.TempDir()
	repo := imageRef[:strings.LastIndex(imageRef, ":")]
	run(t, filepath.Join(binDir, "mkimage"), "-binary", filepath.Join(binDir, "kube-apiserver"), "-out", out,
		"-repo", repo, "-tag", tag, "-upstream-version", l["io.github.mvp-apiserver.upstream-version"],
		"-revision", l["org.opencontainers.image.revision"], "-created", l["org.opencontainers.image.created"], "-arch", cfg.Architecture)
	again, err := os.ReadFile(filepath.Join(out, "digest"))
	if err != nil {
		t.Fatal(err)
	}
	if strings.TrimSpace(string(again)) != digest {
		t.Errorf("rebuilt digest %s, make image gave %s", again, digest)
	}
	for _, f := range []string{"kube-apiserver.tar", "oci/index.json"} {
		a, _ := os.ReadFile(filepath.Join(imagesDir, f))
		b, _ := os.ReadFile(filepath.Join(out, f))
		if len(a) == 0 || !bytes.Equal(a, b) {
			t.Errorf("%s differs between two builds", f)
		}
	}
}
