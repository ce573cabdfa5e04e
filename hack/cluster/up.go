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
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// kubeletSysctls are the global sysctls kubelet writes when it starts;
// down puts them back.
var kubeletSysctls = []string{"vm.overcommit_memory", "kernel.panic", "kernel.panic_on_oops"}

// up brings the cluster up at a release: networks, load balancer, nodes,
// kubeadm init on the first control-plane node, the others joined, the
// workers joined, every node Ready and a Deployment running on a worker.
func up(ctx context.Context, p plan, version string) error {
	release, err := lock(p.Out)
	if err != nil {
		return err
	}
	defer release()
	s, err := loadState(p.statePath())
	if err != nil {
		return err
	}
	if !s.empty() {
		return fmt.Errorf("a cluster is up already, or an earlier one was not removed (%s; running: %s): run make cluster-down first",
			p.statePath(), strings.Join(s.running(), ", "))
	}
	s.Version = version
	r := &runner{logDir: p.logDir(), started: time.Now()}
	if err := upMachine(ctx, r, p, s); err != nil {
		return err
	}
	files, err := upImages(ctx, r, p, version)
	if err != nil {
		return err
	}
	for _, n := range p.Nodes {
		if err := upNode(ctx, r, p, s, n, version, files); err != nil {
			return err
		}
	}
	if err := upKubeadm(ctx, r, p, s, version); err != nil {
		return err
	}
	if err := upWorkload(ctx, r, p); err != nil {
		return err
	}
	printCluster(p, s, r)
	return nil
}

// upMachine: the sysctls, the networks and the load balancer.
func upMachine(ctx context.Context, r *runner, p plan, s *state) error {
	if err := r.step("cluster", "record kubelet sysctls, raise inotify instances", func(log *os.File) error {
		if err := s.recordSysctls(kubeletSysctls...); err != nil {
			return err
		}
		return s.setSysctl("fs.inotify.max_user_instances", "1024")
	}); err != nil {
		return err
	}
	if err := r.step("cluster", "networks", func(log *os.File) error {
		if err := makeSwitch(ctx, log, s); err != nil {
			return err
		}
		if err := makeHost(ctx, log, s, lbNS, lbIP, ""); err != nil {
			return err
		}
		return makeHost(ctx, log, s, clientNS, clientIP, "")
	}); err != nil {
		return err
	}
	return r.step("lb", "haproxy", func(log *os.File) error { return startLB(ctx, log, p, s) })
}

func upImages(ctx context.Context, r *runner, p plan, version string) ([]string, error) {
	var files []string
	err := r.step("cluster", "images of "+version, func(log *os.File) error {
		var err error
		files, err = releaseArchives(ctx, log, p, version)
		return err
	})
	return files, err
}

// upNode makes one node: its network, file system, agent and containerd,
// and its images.
func upNode(ctx context.Context, r *runner, p plan, s *state, n node, version string, files []string) error {
	if err := r.step(n.Name, "network", func(log *os.File) error { return makeNodeNetwork(ctx, log, s, p, n) }); err != nil {
		return err
	}
	var config string
	if err := r.step(n.Name, "file system and packages "+version, func(log *os.File) error {
		var err error
		if config, err = prepareNode(p, s, n, version); err != nil {
			return err
		}
		return writeCNIConfig(p, n)
	}); err != nil {
		return err
	}
	if err := r.step(n.Name, "agent and containerd", func(log *os.File) error { return startAgent(ctx, log, p, s, n, config) }); err != nil {
		return err
	}
	return r.step(n.Name, "import images", func(log *os.File) error { return importImages(ctx, log, s, n, files) })
}

// writeCNIConfig gives a node a bridge with its own Pod range.
func writeCNIConfig(p plan, n node) error {
	dir := filepath.Join(p.nodeDir(n), "fs", "etc-cni", "net.d")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	conf := fmt.Sprintf(`{"cniVersion": "1.0.0", "name": "mvp", "plugins": [
  {"type": "bridge", "bridge": "cni0", "isGateway": true, "ipMasq": true, "hairpinMode": true,
   "ipam": {"type": "host-local", "ranges": [[{"subnet": %q}]], "routes": [{"dst": "0.0.0.0/0"}]}},
  {"type": "portmap", "capabilities": {"portMappings": true}}]}
`, n.podCIDR())
	return os.WriteFile(filepath.Join(dir, "10-mvp.conflist"), []byte(conf), 0o644)
}

// upKubeadm runs kubeadm init on the first control-plane node, then joins
// every other node through the load balancer, one at a time.
func upKubeadm(ctx context.Context, r *runner, p plan, s *state, version string) error {
	sec, err := newSecrets()
	if err != nil {
		return err
	}
	cps := p.controlPlanes()
	first := cps[0]
	var peerIPs []string
	for _, n := range cps {
		peerIPs = append(peerIPs, n.PeerIP)
	}
	if err := r.step(first.Name, "kubeadm init", func(log *os.File) error {
		return kubeadmInit(ctx, log, p, s, first, initConfig(first, version, sec, peerIPs))
	}); err != nil {
		return err
	}
	hash, err := caCertHash(filepath.Join(p.nodeDir(first), "fs", "etc-kubernetes", "pki", "ca.crt"))
	if err != nil {
		return err
	}
	for _, n := range p.Nodes[1:] {
		what := "kubeadm join"
		if n.ControlPlane {
			what += " --control-plane"
		}
		if err := r.step(n.Name, what, func(log *os.File) error {
			return kubeadmJoin(ctx, log, p, s, n, joinConfig(n, sec, hash, p.Faults.on("join-fails", n)))
		}); err != nil {
			return err
		}
	}
	return nil
}

// kubeadmInit writes the first node's vanilla patch and init
// configuration, runs kubeadm init there, and writes the admin
// kubeconfig and the kubectl wrapper.
func kubeadmInit(ctx context.Context, log *os.File, p plan, s *state, n node, config string) error {
	if _, err := writeNodeFile(p, n, "patches/kube-apiserver+json.yaml", vanillaPatch(n)); err != nil {
		return err
	}
	cfg, err := writeNodeFile(p, n, "kubeadm-init.yaml", config)
	if err != nil {
		return err
	}
	if err := inNode(ctx, log, s, n, "kubeadm", "init", "--config", cfg, "--upload-certs"); err != nil {
		return err
	}
	if err := adminConfig(p, n); err != nil {
		return err
	}
	return writeKubectl(p)
}

// kubeadmJoin writes a node's join configuration (and on a control-plane
// node its vanilla patch) and runs kubeadm join there.
func kubeadmJoin(ctx context.Context, log *os.File, p plan, s *state, n node, config string) error {
	if n.ControlPlane {
		if _, err := writeNodeFile(p, n, "patches/kube-apiserver+json.yaml", vanillaPatch(n)); err != nil {
			return err
		}
	}
	cfg, err := writeNodeFile(p, n, "kubeadm-join.yaml", config)
	if err != nil {
		return err
	}
	return inNode(ctx, log, s, n, "kubeadm", "join", "--config", cfg)
}

// kubectl runs kubectl as a client on the client network, with the admin
// kubeconfig (through the load balancer).
func kubectl(ctx context.Context, log *os.File, p plan, args ...string) error {
	return run(ctx, log, "nsenter", append([]string{"--net=/run/netns/" + clientNS, filepath.Join(p.Bin, "kubectl"), "--kubeconfig", p.adminConf()}, args...)...)
}

// upWorkload waits for every node to be Ready and runs a Deployment on
// the workers.
func upWorkload(ctx context.Context, r *runner, p plan) error {
	if err := r.step("cluster", "every node Ready", func(log *os.File) error {
		return kubectl(ctx, log, p, "wait", "--for=condition=Ready", "node", "--all", "--timeout=300s")
	}); err != nil {
		return err
	}
	return r.step("cluster", "Deployment web on the workers", func(log *os.File) error {
		for _, n := range p.Nodes {
			if !n.ControlPlane {
				if err := kubectl(ctx, log, p, "label", "--overwrite", "node", n.Name, "node-role.kubernetes.io/worker="); err != nil {
					return err
				}
			}
		}
		file := filepath.Join(p.Out, "web.yaml")
		if err := os.WriteFile(file, []byte(webDeployment), 0o644); err != nil {
			return err
		}
		if err := kubectl(ctx, log, p, "apply", "-f", file); err != nil {
			return err
		}
		return kubectl(ctx, log, p, "rollout", "status", "deployment/web", "--timeout=180s")
	})
}

const webDeployment = `apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: default}
spec:
  replicas: 2
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      nodeSelector: {node-role.kubernetes.io/worker: ""}
      containers:
      - name: httpd
        image: ` + busyboxRef + `
        imagePullPolicy: Never
        command: ["httpd", "-f", "-p", "8080", "-h", "/tmp"]
        ports: [{containerPort: 8080}]
        readinessProbe: {tcpSocket: {port: 8080}, periodSeconds: 2}
`

func printCluster(p plan, s *state, r *runner) {
	fmt.Printf("\ncluster up at %s in %.0f s\n", s.Version, time.Since(r.started).Seconds())
	fmt.Printf("  load balancer  %s (network namespace %s; clients in %s)\n", p.lbURL(), lbNS, clientNS)
	for _, n := range p.Nodes {
		role := "worker"
		if n.ControlPlane {
			role = fmt.Sprintf("control plane, server https://%s, peers reach it at %s", n.endpoint(), n.PeerIP)
		}
		fmt.Printf("  %-4s %s (%s), agent pid %d\n", n.Name, n.IP, role, s.Pids["agent/"+n.Name])
	}
	fmt.Printf("  admin kubeconfig %s\n  kubectl: %s get nodes\n", p.adminConf(), filepath.Join(p.Out, "kubectl"))
}

// writeKubectl writes _output/cluster/kubectl: kubectl on the client
// network with the admin kubeconfig.
func writeKubectl(p plan) error {
	script := fmt.Sprintf("#!/bin/sh\n# kubectl as a client of the harness's cluster (its client network)\nexec nsenter --net=/run/netns/%s %s --kubeconfig %s \"$@\"\n",
		clientNS, filepath.Join(p.Bin, "kubectl"), p.adminConf())
	return os.WriteFile(filepath.Join(p.Out, "kubectl"), []byte(script), 0o755)
}
