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

# Renders the kubeadm configuration and patch of one control-plane node:
#   NODE_IP=10.0.0.11 MVP_IMAGE=registry.example/kube-apiserver:v1.37.2-mvp \
#   CONTROL_PLANE_ENDPOINT=cp.example:6443 hack/kubeadm/render.sh /etc/kubernetes/mvp
# writes <out>/kubeadm-config.yaml and <out>/patches/kube-apiserver+json.yaml.
# NODE_PORT defaults to 6443, KUBERNETES_VERSION to v1.37.2.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
out=${1:?usage: NODE_IP=... MVP_IMAGE=... CONTROL_PLANE_ENDPOINT=... $0 <output folder>}
: "${NODE_IP:?NODE_IP: the advertise address of this node}"
: "${MVP_IMAGE:?MVP_IMAGE: our kube-apiserver image, e.g. registry.example/kube-apiserver:v1.37.2-mvp}"
: "${CONTROL_PLANE_ENDPOINT:?CONTROL_PLANE_ENDPOINT: the shared endpoint of the cluster, host:port}"
NODE_PORT=${NODE_PORT:-6443}
KUBERNETES_VERSION=${KUBERNETES_VERSION:-v1.37.2}

# Bad input stops here, naming the variable, before anything is written.
ipv4='^([0-9]{1,3}\.){3}[0-9]{1,3}$'
if ! [[ $NODE_IP =~ $ipv4 || $NODE_IP == *:* ]]; then
  echo "render.sh: NODE_IP=$NODE_IP is not an IP address" >&2; exit 2
fi
if ! [[ $NODE_PORT =~ ^[0-9]+$ ]] || (( NODE_PORT < 1 || NODE_PORT > 65535 )); then
  echo "render.sh: NODE_PORT=$NODE_PORT is not a port (1-65535)" >&2; exit 2
fi
if [[ $MVP_IMAGE =~ [[:space:]] || $MVP_IMAGE != *:* ]]; then
  echo "render.sh: MVP_IMAGE=$MVP_IMAGE is not an image reference with a tag or digest" >&2; exit 2
fi

mkdir -p "$out/patches"
PATCHES_DIR=$(cd "$out/patches" && pwd)
render() {
  local line
  while IFS= read -r line || [[ -n $line ]]; do
    line=${line//'${NODE_IP}'/$NODE_IP}
    line=${line//'${NODE_PORT}'/$NODE_PORT}
    line=${line//'${MVP_IMAGE}'/$MVP_IMAGE}
    line=${line//'${CONTROL_PLANE_ENDPOINT}'/$CONTROL_PLANE_ENDPOINT}
    line=${line//'${KUBERNETES_VERSION}'/$KUBERNETES_VERSION}
    line=${line//'${PATCHES_DIR}'/$PATCHES_DIR}
    printf '%s\n' "$line"
  done <"$1"
}
render "$here/kubeadm-config.yaml.in" >"$out/kubeadm-config.yaml.tmp"
render "$here/patches/kube-apiserver+json.yaml.in" >"$PATCHES_DIR/kube-apiserver+json.yaml.tmp"
mv "$out/kubeadm-config.yaml.tmp" "$out/kubeadm-config.yaml"
mv "$PATCHES_DIR/kube-apiserver+json.yaml.tmp" "$PATCHES_DIR/kube-apiserver+json.yaml"
echo "$out/kubeadm-config.yaml"
