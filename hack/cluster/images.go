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

package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// Every image a node runs is built here from the parts, tagged under
// registry (kubeadm's imageRepository), as the archive `ctr images import`
// reads. Which images a release needs is what its own kubeadm says
// (`kubeadm config images list`).

// busyboxRef is the workload image: Debian's static busybox.
const busyboxRef = registry + "/busybox:1.35"

// oursRef is our kube-apiserver under the cluster's registry.
func oursRef(version string) string { return registry + "/kube-apiserver:" + version + "-mvp" }

// releaseImages lists the images a release's kubeadm deploys.
func releaseImages(ctx context.Context, ps parts, version string) ([]string, error) {
	kubeadm, err := ps.file("kubernetes/"+version, "kubeadm")
	if err != nil {
		return nil, err
	}
	out, err := output(ctx, kubeadm, "config", "images", "list", "--kubernetes-version", version, "--image-repository", registry)
	if err != nil {
		return nil, err
	}
	return strings.Fields(out), nil
}

// imageArgs is nodeimage's command line for one image reference.
func imageArgs(ps parts, ref, version string) ([]string, error) {
	name, tag, _ := strings.Cut(strings.TrimPrefix(ref, registry+"/"), ":")
	args := []string{"-ref", ref, "-dir", "/tmp", "-env", "PATH=/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"}
	add := func(key, file, dst string) error {
		src, err := ps.file(key, file)
		if err == nil {
			args = append(args, "-add", src+":"+dst)
		}
		return err
	}
	var err error
	switch {
	case name == "pause":
		err = add("pause/"+tag, "pause", "/pause")
		args = append(args, "-entrypoint", "/pause", "-user", "65535:65535")
	case name == "etcd":
		err = add("etcd/v"+strings.TrimSuffix(tag, "-0"), "etcd", "/usr/local/bin/etcd")
	case name == "coredns":
		err = add("coredns/"+tag, "coredns", "/coredns")
		args = append(args, "-entrypoint", "/coredns")
	case name == "kube-proxy":
		err = add("kubernetes/"+version, name, "/usr/local/bin/"+name)
		args = append(args, iptablesArgs()...)
	case strings.HasPrefix(name, "kube-"):
		err = add("kubernetes/"+version, name, "/usr/local/bin/"+name)
	default:
		err = fmt.Errorf("no recipe for image %s", ref)
	}
	return args, err
}

// iptablesArgs adds the machine's iptables (nft back end) and conntrack,
// with their libraries and extensions, as upstream's kube-proxy image
// carries them.
func iptablesArgs() []string {
	args := []string{"-libs", "-dir", "/run", "-add", "/usr/sbin/xtables-nft-multi:/usr/sbin/xtables-nft-multi",
		"-add", "/usr/sbin/conntrack:/usr/sbin/conntrack"}
	for _, tool := range []string{"iptables", "ip6tables"} {
		for _, suffix := range []string{"", "-save", "-restore"} {
			args = append(args, "-link", "/usr/sbin/"+tool+suffix+":xtables-nft-multi",
				"-link", "/usr/sbin/"+tool+"-nft"+suffix+":xtables-nft-multi")
		}
	}
	exts, _ := filepath.Glob("/usr/lib/x86_64-linux-gnu/xtables/*.so")
	for _, e := range exts {
		args = append(args, "-add", e+":"+e)
	}
	return args
}

// busyboxArgs is the workload image: busybox and a link per applet.
func busyboxArgs() ([]string, error) {
	files, err := busyboxFiles()
	if err != nil {
		return nil, err
	}
	return append(append([]string{"-ref", busyboxRef}, files...), "-entrypoint", "/bin/sh"), nil
}

// busyboxFiles is nodeimage's arguments for Debian's static busybox in an
// image: the binary, a link per applet, /tmp and PATH.
func busyboxFiles() ([]string, error) {
	out, err := exec.Command("/bin/busybox", "--list").Output()
	if err != nil {
		return nil, fmt.Errorf("busybox --list (Debian's busybox-static): %w", err)
	}
	args := []string{"-dir", "/tmp", "-add", "/bin/busybox:/bin/busybox", "-env", "PATH=/bin"}
	for _, applet := range strings.Fields(string(out)) {
		if applet != "busybox" {
			args = append(args, "-link", "/bin/"+applet+":busybox")
		}
	}
	return args, nil
}

// buildImage writes one image's archive unless it exists; it returns its path.
func buildImage(ctx context.Context, log *os.File, p plan, ref string, args []string) (string, error) {
	file := filepath.Join(p.imageDir(), strings.NewReplacer("/", "_", ":", "_").Replace(strings.TrimPrefix(ref, registry+"/"))+".tar")
	if exists(file) {
		return file, nil
	}
	if err := os.MkdirAll(p.imageDir(), 0o755); err != nil {
		return "", err
	}
	return file, run(ctx, log, filepath.Join(p.Bin, "nodeimage"), append(args, "-out", file)...)
}

// releaseArchives builds every image of a release (and the workload) and
// returns their archives.
func releaseArchives(ctx context.Context, log *os.File, p plan, version string) ([]string, error) {
	ps, err := loadParts(p.Parts)
	if err != nil {
		return nil, err
	}
	refs, err := releaseImages(ctx, ps, version)
	if err != nil {
		return nil, err
	}
	var files []string
	for _, ref := range refs {
		args, err := imageArgs(ps, ref, version)
		if err != nil {
			return nil, err
		}
		file, err := buildImage(ctx, log, p, ref, args)
		if err != nil {
			return nil, err
		}
		files = append(files, file)
	}
	args, err := busyboxArgs()
	if err != nil {
		return nil, err
	}
	file, err := buildImage(ctx, log, p, busyboxRef, args)
	return append(files, file), err
}

// importImages imports archives into a node's containerd, in the
// namespace kubelet's CRI uses.
func importImages(ctx context.Context, log *os.File, s *state, n node, files []string) error {
	for _, f := range files {
		if err := inNode(ctx, log, s, n, "ctr", "-n", "k8s.io", "images", "import", "--local", f); err != nil {
			return err
		}
	}
	return nil
}

// importOurs imports make image's archive and tags it under the cluster's
// registry, as an operator publishing it would.
func importOurs(ctx context.Context, log *os.File, p plan, s *state, n node, version string) error {
	if err := importImages(ctx, log, s, n, []string{p.Ours}); err != nil {
		return err
	}
	return inNode(ctx, log, s, n, "ctr", "-n", "k8s.io", "images", "tag", "--force",
		"docker.io/library/kube-apiserver:"+version+"-mvp", oursRef(version))
}
