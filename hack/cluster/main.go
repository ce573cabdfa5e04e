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

// Command cluster is the real-node harness: a kubeadm HA control plane
// (three control-plane nodes with stacked etcd, and workers) on this one
// machine, every node a host made of Linux namespaces with its own
// containerd and kubelet, haproxy in front as the controlPlaneEndpoint.
//
//	cluster up      bring it up at the previous release (make cluster)
//	cluster upgrade follow docs/upgrade.md to ours under load (make cluster-upgrade)
//	cluster down    remove everything it made (make cluster-down)
//
// Inside a node, the same binary is the node's agent (`cluster agent`,
// PID 1 of the node) and, named systemctl, what kubeadm asks to restart
// the kubelet. docs/kubeadm.md says how it is used.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
)

func main() {
	if filepath.Base(os.Args[0]) == "systemctl" {
		os.Exit(systemctl(os.Args[1:]))
	}
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: cluster up|upgrade|down|agent [flags]")
		os.Exit(2)
	}
	if err := dispatch(os.Args[1], os.Args[2:]); err != nil {
		fmt.Fprintf(os.Stderr, "cluster %s: %v\n", os.Args[1], err)
		os.Exit(1)
	}
}

func dispatch(verb string, args []string) error {
	fs := flag.NewFlagSet(verb, flag.ExitOnError)
	out := fs.String("out", "_output/cluster", "the harness's folder: state, logs, node file systems, kubeconfigs")
	bin := fs.String("bin-dir", "_output/bin", "make build's binaries (kubectl, nodeimage)")
	partsDir := fs.String("parts", "_output/cluster/parts", "hack/cluster/parts.sh's output")
	ours := fs.String("ours", "_output/images/kube-apiserver.tar", "make image's archive of our kube-apiserver")
	version := fs.String("version", "v1.36.3", "the release the cluster starts at")
	to := fs.String("to", "v1.37.2", "upgrade: the release to upgrade to (ours as its kube-apiserver)")
	cps := fs.Int("control-planes", 3, "control-plane nodes")
	workers := fs.Int("workers", 1, "worker nodes")
	fault := fs.String("fault", "", "make a step fail on purpose, kind:node[,...] (join-fails, image-missing, kill-kubelet): what make test-cluster checks")
	conformance := fs.Bool("conformance", false, "upgrade: run upstream's e2e Job and Deployment conformance tests through a vanilla server while the cluster is mixed (make cluster-conformance)")
	config := fs.String("config", "", "agent: the node's configuration")
	_ = fs.Parse(args)
	if verb == "agent" {
		return agentMain(*config)
	}
	p, err := absPlan(*out, *bin, *partsDir, *ours, *cps, *workers)
	if err != nil {
		return err
	}
	if p.Faults, err = parseFaults(*fault, p); err != nil {
		return err
	}
	p.Conformance = *conformance
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	switch verb {
	case "up":
		return up(ctx, p, *version)
	case "upgrade":
		return upgrade(ctx, p, *to)
	case "down":
		return down(context.Background(), p)
	}
	return fmt.Errorf("unknown command %q (up, upgrade, down)", verb)
}

func absPlan(out, bin, parts, ours string, cps, workers int) (plan, error) {
	if cps < 1 {
		return plan{}, fmt.Errorf("-control-planes %d: the cluster needs at least one control-plane node", cps)
	}
	if workers < 1 {
		return plan{}, fmt.Errorf("-workers %d: the cluster needs at least one worker (Deployment web runs on the workers, and the upgrade drains them)", workers)
	}
	paths := []*string{&out, &bin, &parts, &ours}
	for _, p := range paths {
		abs, err := filepath.Abs(*p)
		if err != nil {
			return plan{}, err
		}
		*p = abs
	}
	return newPlan(out, bin, parts, ours, cps, workers), nil
}
