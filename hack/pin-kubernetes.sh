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

# Pins k8s.io/kubernetes at VERSION and every staging module it replaces
# (its own "=> ./staging/src/..." lines) at the matching v0.MINOR.PATCH,
# plus the etcd server version it requires, then tidies the module.
#
#   hack/pin-kubernetes.sh v1.37.2
#
# With -C DIR it pins the module in DIR instead, without etcd and kubectl:
# hack/previous-release, the vanilla release before ours that the upgrade
# tests and the nodes of hack/cluster start.
#
#   hack/pin-kubernetes.sh -C hack/previous-release v1.36.3
set -euo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"
dir="$root"
if [[ "${1:-}" == "-C" ]]; then
  [[ $# -ge 2 ]] || { echo "usage: $0 [-C DIR] VERSION" >&2; exit 2; }
  dir="$(cd "$2" && pwd)"
  shift 2
fi
if [[ $# -ne 1 ]]; then
  echo "usage: $0 [-C DIR] VERSION   (for example v1.37.2)" >&2
  exit 2
fi
version="v${1#v}"
if [[ ! "$version" =~ ^v1\.([0-9]+)\.([0-9]+)$ ]]; then
  echo "$0: VERSION must look like v1.MINOR.PATCH, got '$1'" >&2
  exit 2
fi
staging_version="v0.${BASH_REMATCH[1]}.${BASH_REMATCH[2]}"

cd "$dir"

modfile=$(go mod download -json "k8s.io/kubernetes@${version}" | sed -n 's/^[[:space:]]*"GoMod": "\(.*\)",$/\1/p')
if [[ -z "$modfile" || ! -f "$modfile" ]]; then
  echo "$0: could not download k8s.io/kubernetes@${version}" >&2
  exit 1
fi

staging=$(sed -n 's#^[[:space:]]*\([^[:space:]]*\) => \./staging/src/.*#\1#p' "$modfile")
if [[ -z "$staging" ]]; then
  echo "$0: no staging replace lines found in $modfile" >&2
  exit 1
fi
etcd=$(sed -n 's#^[[:space:]]*go.etcd.io/etcd/server/v3 \(v[^[:space:]]*\).*#\1#p' "$modfile")

args=(-require="k8s.io/kubernetes@${version}")
for m in $staging; do
  args+=(-replace="${m}=${m}@${staging_version}")
done
go mod edit "${args[@]}"

# The tools we build from the pinned modules (etcd, upstream's binaries, and
# the node parts of hack/cluster/parts.sh: kubelet, kubeadm, the components):
# recorded as go.mod tool directives so that "go build <pkg>" resolves them
# at exactly these versions.
components=(kube-apiserver kube-controller-manager kube-scheduler kube-proxy kubelet kubeadm)
tools=()
for c in "${components[@]}"; do tools+=("k8s.io/kubernetes/cmd/${c}@${version}"); done
if [[ "$dir" == "$root" ]]; then
  go get -tool "${tools[@]}" "k8s.io/kubernetes/cmd/kubectl@${version}" \
    ${etcd:+"go.etcd.io/etcd/server/v3@${etcd}"}
else
  go get -tool "${tools[@]}"
  etcd=""
fi
go mod tidy

echo "pinned k8s.io/kubernetes ${version}, $(wc -w <<<"$staging") staging modules at ${staging_version}${etcd:+, etcd server ${etcd}}"
