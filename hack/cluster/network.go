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
	"errors"
	"fmt"
	"os"
	"slices"
)

// The networks live in network namespaces of their own: a "switch"
// namespace holds the two bridges, and every host (load balancer, clients,
// nodes) is a namespace with a veth into them. The machine's own
// interfaces and routes are never touched.

// addNetns makes a network namespace with its loopback up, recording it
// before anything else can fail.
func addNetns(ctx context.Context, log *os.File, s *state, name string) error {
	if !slices.Contains(s.Netns, name) {
		s.Netns = append(s.Netns, name)
		if err := s.save(); err != nil {
			return err
		}
	}
	if _, err := os.Stat("/run/netns/" + name); err == nil {
		return fmt.Errorf("network namespace %s exists already: a cluster of an earlier run is left; run make cluster-down", name)
	}
	if err := run(ctx, log, "ip", "netns", "add", name); err != nil {
		return err
	}
	return run(ctx, log, "ip", "-n", name, "link", "set", "lo", "up")
}

// makeSwitch makes the switch namespace and its two bridges.
func makeSwitch(ctx context.Context, log *os.File, s *state) error {
	if err := addNetns(ctx, log, s, switchNS); err != nil {
		return err
	}
	for _, br := range []string{clientBr, peerBr} {
		if err := run(ctx, log, "ip", "-n", switchNS, "link", "add", br, "type", "bridge"); err != nil {
			return err
		}
		if err := run(ctx, log, "ip", "-n", switchNS, "link", "set", br, "up"); err != nil {
			return err
		}
	}
	return nil
}

// plug connects namespace ns to a bridge through interface dev with
// address ip/24.
func plug(ctx context.Context, log *os.File, ns, dev, bridge, ip string) error {
	port := ns[len(netPrefix):] + "-" + dev
	steps := [][]string{
		{"-n", switchNS, "link", "add", port, "type", "veth", "peer", "name", dev, "netns", ns},
		{"-n", switchNS, "link", "set", port, "master", bridge, "up"},
		{"-n", ns, "addr", "add", ip + "/24", "dev", dev},
		{"-n", ns, "link", "set", dev, "up"},
	}
	for _, args := range steps {
		if err := run(ctx, log, "ip", args...); err != nil {
			return err
		}
	}
	return nil
}

// makeHost makes a namespace on the client network (and, for a control
// plane node, on the peer network).
func makeHost(ctx context.Context, log *os.File, s *state, ns, ip, peerIP string) error {
	if err := addNetns(ctx, log, s, ns); err != nil {
		return err
	}
	if err := plug(ctx, log, ns, "eth0", clientBr, ip); err != nil {
		return err
	}
	if peerIP != "" {
		return plug(ctx, log, ns, "eth1", peerBr, peerIP)
	}
	return nil
}

// makeNodeNetwork makes a node's namespace, its per-namespace sysctls
// (kubeadm's preflight wants forwarding and bridged traffic through
// iptables) and routes to every other node's Pod range.
func makeNodeNetwork(ctx context.Context, log *os.File, s *state, p plan, n node) error {
	if err := makeHost(ctx, log, s, n.netns(), n.IP, n.PeerIP); err != nil {
		return err
	}
	for _, kv := range []string{"net.ipv4.ip_forward=1", "net.bridge.bridge-nf-call-iptables=1", "net.bridge.bridge-nf-call-ip6tables=1"} {
		if err := run(ctx, log, "ip", "netns", "exec", n.netns(), "sysctl", "-q", "-w", kv); err != nil {
			return err
		}
	}
	for _, other := range p.Nodes {
		if other.Name == n.Name {
			continue
		}
		if err := run(ctx, log, "ip", "-n", n.netns(), "route", "add", other.podCIDR(), "via", other.IP); err != nil {
			return err
		}
	}
	return nil
}

// removeNetns deletes the recorded namespaces, last first; one that is
// gone already is no error.
func removeNetns(ctx context.Context, log *os.File, s *state) error {
	var errs []error
	for i := len(s.Netns) - 1; i >= 0; i-- {
		name := s.Netns[i]
		if _, err := os.Stat("/run/netns/" + name); err == nil {
			if err := run(ctx, log, "ip", "netns", "del", name); err != nil {
				errs = append(errs, err)
				continue
			}
		}
		s.Netns = slices.Delete(s.Netns, i, i+1)
	}
	if err := s.save(); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}
