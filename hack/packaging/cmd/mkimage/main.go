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

// Command mkimage is `make image`: it packs our static kube-apiserver
// binary into a one-layer OCI image, with no container daemon and no base
// image. The image runs the binary as a non-root user and carries OCI
// annotations for its source, version and the fork. It is written as an
// OCI layout and as a `docker load`-able tarball. Every timestamp comes
// from -created (the commit's time), so one commit always gives one
// digest.
package main

import (
	"archive/tar"
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// Where the binary lives in the image, and who runs it.
const (
	entrypoint = "/usr/local/bin/kube-apiserver"
	// nonRootUser is the conventional "nonroot" UID/GID of distroless
	// images; numeric, so the image needs no /etc/passwd.
	nonRootUser = "65532:65532"
)

// Annotation keys of our own (the OCI ones are in specAnnotations).
const (
	annotationFork            = "io.github.mvp-apiserver.fork"
	annotationUpstreamVersion = "io.github.mvp-apiserver.upstream-version"
)

type options struct {
	binary, out               string
	repo, tag                 string
	version, upstreamVersion  string
	revision, source, created string
	arch                      string
}

func main() {
	var o options
	flag.StringVar(&o.binary, "binary", "_output/bin/kube-apiserver", "our static kube-apiserver binary")
	flag.StringVar(&o.out, "out", "_output/images", "folder for the OCI layout (oci/) and the docker tarball")
	flag.StringVar(&o.repo, "repo", "kube-apiserver", "image repository (IMAGE_REPO)")
	flag.StringVar(&o.tag, "tag", "", "image tag (IMAGE_TAG); required")
	flag.StringVar(&o.upstreamVersion, "upstream-version", "", "the k8s.io/kubernetes version it is built from; required")
	flag.StringVar(&o.revision, "revision", "", "git commit of the source")
	flag.StringVar(&o.source, "source", "https://github.com/mvp-apiserver/kube-apiserver", "where the source lives")
	flag.StringVar(&o.created, "created", "", "creation time, RFC 3339 (the commit's time, for reproducible builds); required")
	flag.StringVar(&o.arch, "arch", "amd64", "the binary's architecture")
	flag.Parse()
	digest, err := run(o)
	if err != nil {
		fmt.Fprintln(os.Stderr, "mkimage:", err)
		os.Exit(1)
	}
	fmt.Printf("%s:%s %s\n", o.repo, o.tag, digest)
}

func run(o options) (v1.Hash, error) {
	var missing []string
	for _, f := range []struct{ name, value string }{{"-tag", o.tag}, {"-upstream-version", o.upstreamVersion}, {"-created", o.created}} {
		if f.value == "" {
			missing = append(missing, f.name)
		}
	}
	if len(missing) > 0 {
		return v1.Hash{}, fmt.Errorf("missing %s", strings.Join(missing, ", "))
	}
	created, err := time.Parse(time.RFC3339, o.created)
	if err != nil {
		return v1.Hash{}, fmt.Errorf("-created: %w", err)
	}
	ref, err := name.NewTag(o.repo + ":" + o.tag)
	if err != nil {
		return v1.Hash{}, fmt.Errorf("IMAGE_REPO/IMAGE_TAG %q: %w", o.repo+":"+o.tag, err)
	}
	// The version annotation is what the packed binary says it is.
	out, err := exec.Command(o.binary, "--version").Output()
	if err != nil {
		return v1.Hash{}, fmt.Errorf("%s --version: %w", o.binary, err)
	}
	o.version = strings.TrimPrefix(strings.TrimSpace(string(out)), "Kubernetes ")
	img, err := build(o, created)
	if err != nil {
		return v1.Hash{}, err
	}
	digest, err := img.Digest()
	if err != nil {
		return v1.Hash{}, err
	}
	if err := writeLayout(filepath.Join(o.out, "oci"), img, o.tag, ref.String()); err != nil {
		return v1.Hash{}, fmt.Errorf("OCI layout: %w", err)
	}
	if err := writeTarball(filepath.Join(o.out, "kube-apiserver.tar"), ref, img); err != nil {
		return v1.Hash{}, fmt.Errorf("docker tarball: %w", err)
	}
	return digest, os.WriteFile(filepath.Join(o.out, "digest"), []byte(digest.String()+"\n"), 0o644)
}

// build assembles the image: one layer holding the binary, the OCI media
// types, the entrypoint, the user, and the annotations.
func build(o options, created time.Time) (v1.Image, error) {
	bin, err := os.ReadFile(o.binary)
	if err != nil {
		return nil, err
	}
	layerTar, err := binaryLayer(bin, created)
	if err != nil {
		return nil, err
	}
	layer, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(layerTar)), nil
	}, tarball.WithMediaType(types.OCILayer))
	if err != nil {
		return nil, err
	}

	img := mutate.MediaType(empty.Image, types.OCIManifestSchema1)
	img = mutate.ConfigMediaType(img, types.OCIConfigJSON)
	img, err = mutate.Append(img, mutate.Addendum{Layer: layer, History: v1.History{
		Created:   v1.Time{Time: created},
		CreatedBy: "hack/packaging/cmd/mkimage: COPY kube-apiserver " + entrypoint,
	}})
	if err != nil {
		return nil, err
	}
	cfg, err := img.ConfigFile()
	if err != nil {
		return nil, err
	}
	cfg = cfg.DeepCopy()
	anns := annotations(o, created)
	cfg.Created = v1.Time{Time: created}
	cfg.OS, cfg.Architecture = "linux", o.arch
	cfg.Config.Entrypoint = []string{entrypoint}
	cfg.Config.User = nonRootUser
	cfg.Config.WorkingDir = "/"
	cfg.Config.Labels = anns
	if img, err = mutate.ConfigFile(img, cfg); err != nil {
		return nil, err
	}
	annotated, ok := mutate.Annotations(img, anns).(v1.Image)
	if !ok {
		return nil, errors.New("annotating the manifest did not give an image")
	}
	return annotated, nil
}

// annotations are the manifest's annotations and the config's labels.
func annotations(o options, created time.Time) map[string]string {
	a := map[string]string{
		"org.opencontainers.image.title":       "kube-apiserver",
		"org.opencontainers.image.description": "kube-apiserver " + o.upstreamVersion + " with the Mixed Version Proxy",
		"org.opencontainers.image.source":      o.source,
		"org.opencontainers.image.version":     o.version,
		"org.opencontainers.image.created":     created.UTC().Format(time.RFC3339),
		"org.opencontainers.image.licenses":    "Apache-2.0",
		annotationFork:                         "Mixed Version Proxy fork of k8s.io/kubernetes " + o.upstreamVersion,
		annotationUpstreamVersion:              o.upstreamVersion,
	}
	if o.revision != "" {
		a["org.opencontainers.image.revision"] = o.revision
	}
	return a
}

// binaryLayer is the layer's tar: the folders down to the entrypoint and
// the binary, owned by root, every field fixed so the bytes depend only on
// the binary and the time.
func binaryLayer(bin []byte, mtime time.Time) ([]byte, error) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	path := strings.TrimPrefix(entrypoint, "/")
	parts := strings.Split(path, "/")
	for i := 1; i < len(parts); i++ {
		dir := strings.Join(parts[:i], "/") + "/"
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: dir, Mode: 0o755, ModTime: mtime, Format: tar.FormatPAX}); err != nil {
			return nil, err
		}
	}
	if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: path, Mode: 0o755, Size: int64(len(bin)), ModTime: mtime, Format: tar.FormatPAX}); err != nil {
		return nil, err
	}
	if _, err := tw.Write(bin); err != nil {
		return nil, err
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// writeLayout writes a fresh OCI layout holding the image, its reference
// name the tag (what `skopeo ... oci:<dir>:<tag>` looks up).
func writeLayout(dir string, img v1.Image, tag, fullName string) error {
	if err := os.RemoveAll(dir); err != nil {
		return err
	}
	p, err := layout.Write(dir, empty.Index)
	if err != nil {
		return err
	}
	return p.AppendImage(img, layout.WithAnnotations(map[string]string{
		"org.opencontainers.image.ref.name": tag,
		"io.containerd.image.name":          fullName,
	}))
}

// writeTarball writes the image as `docker save` would, tagged ref.
func writeTarball(path string, ref name.Tag, img v1.Image) error {
	tmp := path + ".tmp"
	if err := tarball.WriteToFile(tmp, ref, img); err != nil {
		os.Remove(tmp)
		return err
	}
	return os.Rename(tmp, path)
}
