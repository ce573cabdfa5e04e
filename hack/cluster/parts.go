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
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// parts is hack/cluster/parts.sh's manifest: what it built, by key
// ("containerd", "kubernetes/v1.37.2", "etcd/v3.6.8", ...), and where.
type parts map[string]string

func loadParts(dir string) (parts, error) {
	path := filepath.Join(dir, "manifest")
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("%w (hack/cluster/parts.sh writes it: run make cluster-parts)", err)
	}
	defer f.Close()
	ps := parts{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if k, v, ok := strings.Cut(sc.Text(), "="); ok {
			ps[k] = v
		}
	}
	return ps, sc.Err()
}

// file is one built file of a part, which must exist.
func (ps parts) file(key, name string) (string, error) {
	dir, ok := ps[key]
	if !ok {
		return "", fmt.Errorf("no part %q was built (hack/cluster/parts.sh)", key)
	}
	path := filepath.Join(dir, name)
	if _, err := os.Stat(path); err != nil {
		return "", fmt.Errorf("part %s: %w", key, err)
	}
	return path, nil
}

// installNodeBinaries puts a node's software in its bin folder, as
// packages would: copies of kubelet and kubeadm of the release (an
// upgrade replaces them), links to the rest, and systemctl (this binary).
func installNodeBinaries(p plan, n node, version string) error {
	ps, err := loadParts(p.Parts)
	if err != nil {
		return err
	}
	bin := filepath.Join(p.nodeDir(n), "bin")
	if err := os.MkdirAll(bin, 0o755); err != nil {
		return err
	}
	for _, c := range []string{"kubelet", "kubeadm"} {
		if err := installRelease(ps, bin, c, version); err != nil {
			return err
		}
	}
	links := map[string][2]string{
		"containerd": {"containerd", "containerd"}, "ctr": {"containerd", "ctr"},
		"containerd-shim-runc-v2": {"containerd", "containerd-shim-runc-v2"},
		"runc":                    {"runc", "runc"}, "crictl": {"crictl", "crictl"},
	}
	for name, src := range links {
		target, err := ps.file(src[0], src[1])
		if err != nil {
			return err
		}
		if err := relink(target, filepath.Join(bin, name)); err != nil {
			return err
		}
	}
	self, err := os.Executable()
	if err != nil {
		return err
	}
	if err := relink(self, filepath.Join(bin, "systemctl")); err != nil {
		return err
	}
	if err := relink(filepath.Join(p.Bin, "kubectl"), filepath.Join(bin, "kubectl")); err != nil {
		return err
	}
	return installCNI(ps, filepath.Join(p.nodeDir(n), "fs", "opt-cni-bin"))
}

// installRelease copies one binary of a release into a node's bin folder,
// replacing the old one at once (a rename), as a package upgrade does.
func installRelease(ps parts, bin, name, version string) error {
	src, err := ps.file("kubernetes/"+version, name)
	if err != nil {
		return err
	}
	tmp := filepath.Join(bin, "."+name+".new")
	if err := exec.Command("cp", "-f", src, tmp).Run(); err != nil {
		return fmt.Errorf("copy %s: %w", src, err)
	}
	return os.Rename(tmp, filepath.Join(bin, name))
}

func installCNI(ps parts, dir string) error {
	for _, plugin := range []string{"bridge", "loopback", "host-local", "portmap"} {
		target, err := ps.file("cni", plugin)
		if err != nil {
			return err
		}
		if err := relink(target, filepath.Join(dir, plugin)); err != nil {
			return err
		}
	}
	return nil
}

func relink(target, link string) error {
	_ = os.Remove(link)
	return os.Symlink(target, link)
}

func pauseVersion(p plan) string {
	ps, err := loadParts(p.Parts)
	if err != nil {
		return "missing"
	}
	for k := range ps {
		if v, ok := strings.CutPrefix(k, "pause/"); ok {
			return v
		}
	}
	return "missing"
}
