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
	"fmt"
	"path/filepath"
)

// The cluster's addresses are in 198.19.0.0/16, a range reserved for
// tests: clients and the load balancer on one network, control-plane peer
// traffic on another, Pods and Services in ranges of their own.
const (
	clientNet   = "198.19.0" // .2 load balancer, .1N control plane N, .2N worker N, .100 clients
	peerNet     = "198.19.1" // .1N control plane N, nothing else
	podSubnet   = "198.19.64.0/18"
	serviceNet  = "198.19.32.0/20"
	lbIP        = clientNet + ".2"
	clientIP    = clientNet + ".100"
	apiPort     = 6443
	netPrefix   = "mvpc-" // every network namespace the harness makes
	switchNS    = netPrefix + "switch"
	lbNS        = netPrefix + "lb"
	clientNS    = netPrefix + "client"
	clientBr    = "br-client"
	peerBr      = "br-peer"
	registry    = "registry.mvp.test" // kubeadm's imageRepository
	clusterName = "mvp"
)

// node is one host of the cluster.
type node struct {
	Name         string
	Index        int // 1-based, over all nodes: the Pod range 198.19.(64+Index).0/24
	ControlPlane bool
	IP           string // on the client network
	PeerIP       string // on the peer network (control plane only)
}

func (n node) netns() string   { return netPrefix + n.Name }
func (n node) podCIDR() string { return fmt.Sprintf("198.19.%d.0/24", 64+n.Index) }
func (n node) endpoint() string {
	return fmt.Sprintf("%s:%d", n.IP, apiPort)
}

// plan is the whole cluster: its nodes and where its files live.
type plan struct {
	Nodes []node
	Out   string // _output/cluster: state, logs, kubeconfigs
	Bin   string // make build's binaries
	Parts string // hack/cluster/parts.sh's output
	Ours  string // make image's docker tarball

	Faults faults // what make test-cluster makes fail on purpose
	// Conformance: the upgrade runs upstream's e2e conformance tests
	// while the cluster is mixed (make cluster-conformance).
	Conformance bool
}

func newPlan(out, bin, parts, ours string, controlPlanes, workers int) plan {
	p := plan{Out: out, Bin: bin, Parts: parts, Ours: ours}
	for i := 1; i <= controlPlanes; i++ {
		p.Nodes = append(p.Nodes, node{
			Name: fmt.Sprintf("cp%d", i), Index: len(p.Nodes) + 1, ControlPlane: true,
			IP: fmt.Sprintf("%s.%d", clientNet, 10+i), PeerIP: fmt.Sprintf("%s.%d", peerNet, 10+i),
		})
	}
	for i := 1; i <= workers; i++ {
		p.Nodes = append(p.Nodes, node{
			Name: fmt.Sprintf("w%d", i), Index: len(p.Nodes) + 1,
			IP: fmt.Sprintf("%s.%d", clientNet, 20+i),
		})
	}
	return p
}

func (p plan) controlPlanes() []node {
	var out []node
	for _, n := range p.Nodes {
		if n.ControlPlane {
			out = append(out, n)
		}
	}
	return out
}

func (p plan) node(name string) (node, error) {
	for _, n := range p.Nodes {
		if n.Name == name {
			return n, nil
		}
	}
	return node{}, fmt.Errorf("no node %q in this cluster", name)
}

func (p plan) nodeDir(n node) string { return filepath.Join(p.Out, "nodes", n.Name) }
func (p plan) logDir() string        { return filepath.Join(p.Out, "logs") }
func (p plan) adminConf() string     { return filepath.Join(p.Out, "admin.conf") }
func (p plan) statePath() string     { return filepath.Join(p.Out, "state.json") }
func (p plan) imageDir() string      { return filepath.Join(p.Parts, "images") }
func (p plan) lbURL() string         { return fmt.Sprintf("https://%s:%d", lbIP, apiPort) }
