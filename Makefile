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

# Build, test and run the Mixed Version Proxy kube-apiserver.
# Everything lands in _output/; the Go build cache is never cleaned.

SHELL := /usr/bin/env bash
.SHELLFLAGS := -eu -o pipefail -c

OUT        := $(CURDIR)/_output
BIN        := $(OUT)/bin
GO         ?= go
export CGO_ENABLED ?= 0

# The upstream base version comes from go.mod; the fork identifies itself in
# the semver build metadata, so the version itself is unchanged.
KUBE_VERSION := $(shell $(GO) list -m -f '{{.Version}}' k8s.io/kubernetes)
GIT_COMMIT   := $(shell git rev-parse --verify -q HEAD 2>/dev/null || echo unknown)
GIT_SHORT    := $(shell git rev-parse --verify -q --short=12 HEAD 2>/dev/null || echo unknown)
GIT_TREE     := $(shell if [ -z "$$(git status --porcelain 2>/dev/null)" ]; then echo clean; else echo dirty; fi)
BUILD_DATE   := $(shell date -u -d @$$(git log -1 --format=%ct 2>/dev/null || date +%s) +%Y-%m-%dT%H:%M:%SZ)
# The previous minor release's vanilla kube-apiserver, for the upgrade tests:
# its own module (hack/previous-release), bumped with
# hack/pin-kubernetes.sh -C hack/previous-release v1.36.N
PREVIOUS_VERSION := $(shell cd hack/previous-release && $(GO) list -m -f '{{.Version}}' k8s.io/kubernetes)

# major and minor of a version such as v1.37.2+mvp.abc
major = $(word 1,$(subst ., ,$(patsubst v%,%,$(1))))
minor = $(word 2,$(subst ., ,$(patsubst v%,%,$(1))))

version_ldflags = -s -w \
  -X k8s.io/component-base/version.gitVersion=$(1) \
  -X k8s.io/component-base/version.gitMajor=$(call major,$(1)) \
  -X k8s.io/component-base/version.gitMinor=$(call minor,$(1)) \
  -X k8s.io/component-base/version.gitCommit=$(2) \
  -X k8s.io/component-base/version.gitTreeState=$(GIT_TREE) \
  -X k8s.io/component-base/version.buildDate=$(BUILD_DATE)

OUR_LDFLAGS      := $(call version_ldflags,$(KUBE_VERSION)+mvp.$(GIT_SHORT),$(GIT_COMMIT))
UPSTREAM_LDFLAGS := $(call version_ldflags,$(KUBE_VERSION),$(KUBE_VERSION))
PREVIOUS_LDFLAGS := $(call version_ldflags,$(PREVIOUS_VERSION),$(PREVIOUS_VERSION))
GOBUILD          := $(GO) build -trimpath
# Tests build with the same flags as the binaries, so the packages of
# Kubernetes compiled once serve both (without -trimpath they build again).
GOTEST           := $(GO) test -trimpath

# make image: the repository and tag of the image.
IMAGE_REPO ?= kube-apiserver
IMAGE_TAG  ?= $(KUBE_VERSION)-mvp
IMAGES     := $(OUT)/images

.PHONY: all build kube-apiserver tools image test test-unit test-alerts test-e2e upgrade-compare test-packaging test-deps run bench soak clean cluster-deps cluster-parts cluster-tools cluster cluster-upgrade cluster-conformance test-cluster cluster-down

all: build

## build: our kube-apiserver plus etcd, kube-controller-manager, kubectl, kubeadm, upstream's vanilla kube-apiserver and the previous release's (kube-apiserver-previous)
build: kube-apiserver tools

kube-apiserver:
	@mkdir -p $(BIN)
	$(GOBUILD) -ldflags '$(OUR_LDFLAGS)' -o $(BIN)/kube-apiserver ./cmd/kube-apiserver

# Built from the modules go.mod pins (tool directives), never downloaded.
tools:
	@mkdir -p $(BIN)
	$(GOBUILD) -ldflags '-s -w' -o $(BIN)/etcd go.etcd.io/etcd/server/v3
	$(GOBUILD) -ldflags '$(UPSTREAM_LDFLAGS)' -o $(BIN)/kube-apiserver-upstream k8s.io/kubernetes/cmd/kube-apiserver
	$(GOBUILD) -ldflags '$(UPSTREAM_LDFLAGS)' -o $(BIN)/kube-controller-manager k8s.io/kubernetes/cmd/kube-controller-manager
	$(GOBUILD) -ldflags '$(UPSTREAM_LDFLAGS)' -o $(BIN)/kubectl k8s.io/kubernetes/cmd/kubectl
	$(GOBUILD) -ldflags '$(UPSTREAM_LDFLAGS)' -o $(BIN)/kubeadm k8s.io/kubernetes/cmd/kubeadm
	cd hack/previous-release && $(GOBUILD) -ldflags '$(PREVIOUS_LDFLAGS)' -o $(BIN)/kube-apiserver-previous k8s.io/kubernetes/cmd/kube-apiserver

## image: our binary as a one-layer OCI image, an OCI layout and a docker tarball in _output/images (no daemon, no base image)
image: kube-apiserver
	cd hack/packaging && $(GOBUILD) -o $(BIN)/mkimage ./cmd/mkimage
	$(BIN)/mkimage -binary $(BIN)/kube-apiserver -out $(IMAGES) -repo $(IMAGE_REPO) -tag $(IMAGE_TAG) \
	  -upstream-version $(KUBE_VERSION) -revision $(GIT_COMMIT) -created $(BUILD_DATE) -arch $$($(GO) env GOARCH)

## test: unit tests, the image and kubeadm/kind recipes read back by real tools, then the end-to-end tests against real processes
test: build image test-unit test-alerts test-packaging test-e2e

## test-unit: the unit tests with the race detector (cgo: gcc comes from test-deps)
test-unit: test-deps
	CGO_ENABLED=1 $(GOTEST) -race -count=1 ./pkg/... ./cmd/... ./hack/...

## test-packaging: skopeo and umoci read the image back, kubeadm renders the recipe, the kind config decodes strictly
test-packaging: test-deps
	MVP_BIN_DIR=$(BIN) MVP_IMAGES_DIR=$(IMAGES) MVP_IMAGE_REF=$(IMAGE_REPO):$(IMAGE_TAG) $(GOTEST) -count=1 -v ./test/packaging/...
	cd hack/packaging && $(GOTEST) -count=1 -v ./...

## test-alerts: the Prometheus alerting rules under hack/prometheus, checked and unit-tested by promtool
test-alerts: test-deps
	promtool check rules hack/prometheus/mvp-alerts.yaml
	cd hack/prometheus && promtool test rules mvp-alerts_test.yaml

## test-deps: Debian packages the tests run (tinyproxy, socat, skopeo, umoci, prometheus for promtool, gcc and libc6-dev for -race), installed with apt-get when missing
test-deps:
	hack/install-test-deps.sh

test-e2e: test-deps
	MVP_BIN_DIR=$(BIN) $(GOTEST) -count=1 -timeout 40m -v ./test/e2e/... -ginkgo.no-color -ginkgo.v

## upgrade-compare: the rolling-upgrade spec from vanilla v1.36.3 to ours, then the same run to vanilla v1.37.2 (its 404s and 503s reported, not failed); logs in _output/
upgrade-compare: build test-deps
	MVP_BIN_DIR=$(BIN) $(GOTEST) -count=1 -timeout 20m -v ./test/e2e/ -ginkgo.no-color -ginkgo.v -ginkgo.focus='rolling upgrade' | tee $(OUT)/upgrade-ours.log
	MVP_BIN_DIR=$(BIN) MVP_E2E_UPGRADE_NEW=upstream $(GOTEST) -count=1 -timeout 20m -v ./test/e2e/ -ginkgo.no-color -ginkgo.v -ginkgo.focus='rolling upgrade' | tee $(OUT)/upgrade-upstream.log

## run: the local mixed-version cluster (Ctrl-C stops it)
run: build
	$(GOBUILD) -o $(BIN)/localcluster ./hack/localcluster
	exec $(BIN)/localcluster -bin-dir $(BIN) -out $(OUT)/local

## bench: side-by-side benchmarks with upstream's vanilla kube-apiserver (not part of test); BENCH_FLAGS passes options
bench: build
	$(GOBUILD) -o $(BIN)/bench ./hack/bench
	$(BIN)/bench -bin-dir $(BIN) -out $(OUT)/bench -go $(GO) -module-dir $(CURDIR) $(BENCH_FLAGS)

## soak: ours (twice) and vanilla v1.36.3 restarting in turn for SOAK_DURATION under load; fails on growth above 10%, a false 404 or a lost watch event (_output/soak: soak.json and plots; not part of test)
SOAK_DURATION ?= 1h
soak: build
	$(GOBUILD) -o $(BIN)/soak ./hack/soak
	$(BIN)/soak -bin-dir $(BIN) -out $(OUT)/soak -duration $(SOAK_DURATION) $(SOAK_FLAGS)

## cluster-deps: Debian packages the nodes use (haproxy, libseccomp for runc, iptables, conntrack, ethtool, socat, busybox-static, gcc)
cluster-deps:
	hack/install-test-deps.sh haproxy=haproxy /usr/include/seccomp.h=libseccomp-dev pkg-config=pkg-config \
	  xtables-nft-multi=iptables conntrack=conntrack ethtool=ethtool socat=socat /bin/busybox=busybox-static \
	  gcc=gcc /usr/include/stdlib.h=libc6-dev

CLUSTER_ARGS = -bin-dir $(BIN) -out $(OUT)/cluster -parts $(OUT)/cluster/parts -ours $(IMAGES)/kube-apiserver.tar

cluster-tools:
	@mkdir -p $(BIN)
	cd hack/packaging && $(GOBUILD) -o $(BIN)/nodeimage ./cmd/nodeimage
	$(GOBUILD) -o $(BIN)/cluster ./hack/cluster

## cluster-parts: node software, kubelet/kubeadm/components of both releases, built once into _output/cluster/parts
cluster-parts: build image cluster-deps cluster-tools
	hack/cluster/parts.sh $(BIN) $(OUT)/cluster/parts

## cluster: a kubeadm HA control plane at the previous release on namespace nodes (CLUSTER_FLAGS passes options)
cluster: cluster-parts
	$(BIN)/cluster up $(CLUSTER_ARGS) $(CLUSTER_FLAGS)

## cluster-upgrade: docs/upgrade.md followed on the cluster: kubeadm upgrade apply/node to v1.37.2 with our image, kubelets with drain and uncordon, a rollback and forward, under client load (summary per phase, _output/cluster/upgrade.json)
cluster-upgrade: cluster-tools
	$(BIN)/cluster upgrade $(CLUSTER_ARGS) $(CLUSTER_FLAGS)

## cluster-conformance: make cluster-upgrade with upstream's e2e Job and Deployment conformance tests (e2e.test, built from the pinned module) run through a vanilla server while the cluster is mixed
cluster-conformance: cluster-tools
	hack/cluster/parts.sh $(BIN) $(OUT)/cluster/parts e2e
	$(BIN)/cluster upgrade -conformance $(CLUSTER_ARGS) $(CLUSTER_FLAGS)

## test-cluster: make cluster, make cluster-upgrade and make cluster-down, asserted (about 15 minutes warm; not part of test)
test-cluster: cluster-parts
	MVP_BIN_DIR=$(BIN) MVP_CLUSTER_OUT=$(OUT)/cluster MVP_CLUSTER_PARTS=$(OUT)/cluster/parts MVP_IMAGES_DIR=$(IMAGES) \
	  $(GOTEST) -count=1 -timeout 60m -v ./test/cluster/...

## cluster-down: remove everything make cluster made (safe to run twice)
cluster-down: cluster-tools
	$(BIN)/cluster down $(CLUSTER_ARGS)

## clean: remove _output (never the Go build cache)
clean:
	rm -rf $(OUT)
