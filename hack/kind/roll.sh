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

# Rolls our kube-apiserver through the control-plane nodes of the kind
# cluster of hack/kind/cluster.yaml, one node at a time, as an upgrade
# would: load the image, patch the node's static Pod, wait until that
# server is ready, then the next. Needs docker (or podman) and kind.
#   make image && hack/kind/roll.sh [cluster name, default mvp]
set -euo pipefail

cluster=${1:-mvp}
here=$(cd "$(dirname "$0")" && pwd)
archive="$here/../../_output/images/kube-apiserver.tar"
[[ -f $archive ]] || { echo "roll.sh: $archive not found: run make image first" >&2; exit 1; }
runtime=${KIND_EXPERIMENTAL_PROVIDER:-docker}

nodes=$(kind get nodes --name "$cluster" | grep control-plane | sort)
[[ -n $nodes ]] || { echo "roll.sh: no control-plane nodes in kind cluster $cluster" >&2; exit 1; }
kind load image-archive "$archive" --name "$cluster"

for node in $nodes; do
  echo "==> $node"
  before=$("$runtime" exec "$node" crictl ps --name kube-apiserver -q)
  "$runtime" exec "$node" sh -ec '
    m=/etc/kubernetes/manifests/kube-apiserver.yaml
    kubectl patch --local -f "$m" --type json --patch-file /etc/mvp/patches/kube-apiserver+json.yaml -o yaml >/tmp/kube-apiserver.yaml
    mv /tmp/kube-apiserver.yaml "$m"'
  # The kubelet replaces the static Pod: wait for a new container that is
  # ready before touching the next node.
  for i in $(seq 1 120); do
    now=$("$runtime" exec "$node" crictl ps --name kube-apiserver -q || true)
    if [[ -n $now && $now != "$before" ]] && "$runtime" exec "$node" curl -sfk https://localhost:6443/readyz >/dev/null; then
      break
    fi
    if (( i == 120 )); then echo "roll.sh: $node's kube-apiserver not ready after 2 minutes" >&2; exit 1; fi
    sleep 1
  done
  "$runtime" exec "$node" crictl inspect "$now" | grep -o '"image": *"[^"]*kube-apiserver[^"]*"' | head -1
done
