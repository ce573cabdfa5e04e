#!/usr/bin/env bash

# Copyright 2026 The Mixed Version Proxy Authors.
#
# Licensed under the Apache License, Version 2.0 (the "License");
# you may not use this file except in compliance with the License.
# You may obtain a copy of the License at
#
#     http://www.apache.org/licenses/LICENSE-2.0
#
# Unless required by applicable law or agreed to in writing, software
# distributed under the License is distributed on an "AS IS" BASIS,
# WITHOUT WARRANTIES OR CONDITIONS OF ANY KIND, either express or implied.
# See the License for the specific language governing permissions and
# limitations under the License.

# Builds everything the harness's nodes run, with nothing pulled from a
# registry: the node software (containerd, runc, CNI plugins, crictl, pause),
# kubelet and kubeadm and the control-plane components of both releases,
# and the OCI image archives every node imports into its containerd.
#
#   hack/cluster/parts.sh <bin-dir> <parts-dir> [e2e]
#
# With "e2e" it also builds upstream's e2e suite (e2e.test) and agnhost
# from hack/cluster/modules/e2e, for make cluster-conformance.
#
# <bin-dir> holds `make build`'s binaries (kube-apiserver, etcd, kubeadm, ...)
# and `make image`'s archive sits beside it in ../images. The Go parts come
# from the modules under hack/cluster/modules (their go.mod and go.sum pin
# them) and from the two Kubernetes modules (go.mod, hack/previous-release).
# What exists is reused: each part is built once, under a folder named by its
# version, so a bump builds anew.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
bin=$(cd "${1:?usage: $0 <bin-dir> <parts-dir> [e2e]}" && pwd)
parts=${2:?usage: $0 <bin-dir> <parts-dir> [e2e]}
with_e2e=${3:-}
mkdir -p "$parts" && parts=$(cd "$parts" && pwd)
GO=${GO:-go}
GOBUILD=("$GO" build -trimpath)
# kubeadm's imageRepository on every node; images are tagged under it.
REGISTRY=${REGISTRY:-registry.mvp.test}
NEW=$("$GO" -C "$root" list -m -f '{{.Version}}' k8s.io/kubernetes)
OLD=$("$GO" -C "$root/hack/previous-release" list -m -f '{{.Version}}' k8s.io/kubernetes)

step() { printf '[parts] %s\n' "$*"; }

# The manifest names every part's folder, one "key=folder" a line, for
# hack/cluster to read; written last, so it lists only what was built.
manifest=()
part() { manifest+=("$1=$2"); }

# tool <module folder> <output> <package> [build flags...]: one binary of a
# pinned module, unless it exists.
tool() {
  local mod=$1 out=$2 pkg=$3; shift 3
  [[ -x $out ]] && return 0
  step "build $(basename "$out") ($pkg)"
  mkdir -p "$(dirname "$out")"
  (cd "$mod" && "${GOBUILD[@]}" "$@" -o "$out.tmp" "$pkg") && mv "$out.tmp" "$out"
}

modversion() { "$GO" -C "$1" list -m -f '{{.Version}}' "$2"; }

node_software() {
  local m=$here/modules v
  v=$(modversion "$m/containerd" github.com/containerd/containerd/v2)
  for c in containerd ctr containerd-shim-runc-v2; do
    CGO_ENABLED=0 tool "$m/containerd" "$parts/containerd-$v/$c" "github.com/containerd/containerd/v2/cmd/$c" -tags no_btrfs,no_devmapper,no_zfs
  done
  part containerd "$parts/containerd-$v"
  v=$(modversion "$m/runc" github.com/opencontainers/runc)
  # cgo for nsenter and libseccomp (Pods ask for the RuntimeDefault profile).
  CGO_ENABLED=1 tool "$m/runc" "$parts/runc-$v/runc" github.com/opencontainers/runc -tags seccomp
  part runc "$parts/runc-$v"
  v=$(modversion "$m/cni-plugins" github.com/containernetworking/plugins)
  for p in main/bridge main/loopback ipam/host-local meta/portmap; do
    CGO_ENABLED=0 tool "$m/cni-plugins" "$parts/cni-plugins-$v/$(basename $p)" "github.com/containernetworking/plugins/plugins/$p"
  done
  part cni "$parts/cni-plugins-$v"
  v=$(modversion "$m/cri-tools" sigs.k8s.io/cri-tools)
  CGO_ENABLED=0 tool "$m/cri-tools" "$parts/cri-tools-$v/crictl" sigs.k8s.io/cri-tools/cmd/crictl
  part crictl "$parts/cri-tools-$v"
}

# kubernetes <module folder> <version> <folder with make build's binaries>:
# kubelet, kubeadm and the components of one release.
kubernetes() {
  local mod=$1 v=$2 out=$parts/kubernetes-$2 ld
  ld="-s -w -X k8s.io/component-base/version.gitVersion=$v -X k8s.io/component-base/version.gitCommit=$v"
  ld+=" -X k8s.io/component-base/version.gitTreeState=clean -X k8s.io/component-base/version.buildDate=2026-01-01T00:00:00Z"
  ld+=" -X k8s.io/component-base/version.gitMajor=1 -X k8s.io/component-base/version.gitMinor=$(cut -d. -f2 <<<"$v")"
  for c in kubelet kubeadm kube-apiserver kube-controller-manager kube-scheduler kube-proxy; do
    CGO_ENABLED=0 tool "$mod" "$out/$c" "k8s.io/kubernetes/cmd/$c" -ldflags "$ld"
  done
  part "kubernetes/$v" "$out"
}

# pause from the C source the kubernetes module ships, as upstream builds it.
pause() {
  local src version out
  src=$("$GO" -C "$root" list -m -f '{{.Dir}}' k8s.io/kubernetes)/build/pause
  version=$(sed -n 's/^TAG ?= //p' "$src/Makefile")
  out=$parts/pause-$version/pause
  part "pause/$version" "$(dirname "$out")"
  [[ -x $out ]] && return 0
  step "build pause $version (gcc -static)"
  mkdir -p "$(dirname "$out")"
  gcc -Os -Wall -Werror -static -DVERSION="v$version-mvp" -o "$out" "$src/linux/pause.c"
}

# e2e_suite: upstream's e2e.test (the test binary of the kubernetes
# module's test/e2e, as upstream's make builds it) and agnhost, the suite's
# workload, when asked for; listed whenever they were built.
e2e_suite() {
  local mod=$here/modules/e2e v out
  v=$(modversion "$mod" k8s.io/kubernetes)
  out=$parts/e2e-$v
  if [[ $with_e2e == e2e && ! -x $out/e2e.test ]]; then
    step "build e2e.test (k8s.io/kubernetes/test/e2e $v)"
    mkdir -p "$out"
    (cd "$mod" && CGO_ENABLED=0 "$GO" test -c -trimpath -ldflags "-s -w -X k8s.io/component-base/version.gitVersion=$v" \
      -o "$out/e2e.test.tmp" k8s.io/kubernetes/test/e2e) && mv "$out/e2e.test.tmp" "$out/e2e.test"
  fi
  if [[ $with_e2e == e2e ]]; then
    CGO_ENABLED=0 tool "$mod" "$out/agnhost" k8s.io/kubernetes/test/images/agnhost
  fi
  if [[ -x $out/e2e.test && -x $out/agnhost ]]; then
    part "e2e/$v" "$out"
  fi
}

node_software
e2e_suite
kubernetes "$root" "$NEW"
kubernetes "$root/hack/previous-release" "$OLD"
pause
# etcd and CoreDNS at the versions each release's kubeadm deploys: one
# module each under hack/cluster/modules, but for the etcd of go.mod, which
# make build already built.
part "etcd/$("$GO" -C "$root" list -m -f '{{.Version}}' go.etcd.io/etcd/server/v3)" "$bin"
for mod in "$here"/modules/etcd-* "$here"/modules/coredns-*; do
  name=$(basename "$mod")
  pkg=go.etcd.io/etcd/server/v3
  [[ $name == coredns-* ]] && pkg=github.com/coredns/coredns
  CGO_ENABLED=0 tool "$mod" "$parts/$name/${name%%-*}" "$pkg"
  part "${name%%-*}/v${name#*-}" "$parts/$name"
done
printf '%s\n' "${manifest[@]}" >"$parts/manifest.tmp"
mv "$parts/manifest.tmp" "$parts/manifest"
step "done: $parts/manifest"
