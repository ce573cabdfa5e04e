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

# Installs the Debian packages the tests run as real processes, when
# missing: tinyproxy (an HTTP CONNECT proxy for the egress tests), socat
# (puts it behind a Unix socket), skopeo and umoci (read back the image
# of make image), prometheus (its promtool checks the alerting rules
# under hack/prometheus), and gcc with the C library's headers (cgo, for
# the race detector of make test-unit). Packages come through apt, the normal client; the tests
# start their own instances on loopback, so tinyproxy's own service is
# kept from starting.
set -euo pipefail

# With arguments, each a command=package pair, it installs those instead
# (hack/cluster's node parts: make cluster-deps).
missing=()
if [ $# -gt 0 ]; then
  for pair in "$@"; do
    command -v "${pair%%=*}" >/dev/null 2>&1 || [ -e "${pair%%=*}" ] || missing+=("${pair#*=}")
  done
else
command -v tinyproxy >/dev/null 2>&1 || missing+=(tinyproxy)
command -v socat >/dev/null 2>&1 || missing+=(socat)
command -v skopeo >/dev/null 2>&1 || missing+=(skopeo)
command -v umoci >/dev/null 2>&1 || missing+=(umoci)
command -v promtool >/dev/null 2>&1 || missing+=(prometheus)
command -v gcc >/dev/null 2>&1 || missing+=(gcc)
[ -e /usr/include/stdlib.h ] || missing+=(libc6-dev)
fi
if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi

sudo=()
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null 2>&1 || { echo "install-test-deps: need root or sudo to install ${missing[*]}" >&2; exit 1; }
  sudo=(sudo)
fi

echo "install-test-deps: installing ${missing[*]} with apt-get"
# A policy-rc.d that says "no" keeps tinyproxy's and prometheus' packages
# from starting their own daemons (listening on every interface) during
# installation.
policy=/usr/sbin/policy-rc.d
placed=false
if [ ! -e "$policy" ]; then
  printf '#!/bin/sh\nexit 101\n' | "${sudo[@]}" tee "$policy" >/dev/null
  "${sudo[@]}" chmod 755 "$policy"
  placed=true
fi
cleanup() { if $placed; then "${sudo[@]}" rm -f "$policy"; fi; }
trap cleanup EXIT

export DEBIAN_FRONTEND=noninteractive
"${sudo[@]}" apt-get update -qq
"${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
if [ $# -gt 0 ]; then
  for pair in "$@"; do
    command -v "${pair%%=*}" >/dev/null 2>&1 || [ -e "${pair%%=*}" ] || { echo "install-test-deps: ${pair%%=*} still missing after installing ${pair#*=}" >&2; exit 1; }
  done
  exit 0
fi
for pkg in "${missing[@]}"; do
  [ "$pkg" = libc6-dev ] && { [ -e /usr/include/stdlib.h ] || { echo "install-test-deps: /usr/include/stdlib.h still missing after installing libc6-dev" >&2; exit 1; }; continue; }
  cmd=$pkg
  [ "$pkg" = prometheus ] && cmd=promtool
  command -v "$cmd" >/dev/null 2>&1 || { echo "install-test-deps: $cmd still not found after installing it" >&2; exit 1; }
done
