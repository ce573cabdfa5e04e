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
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// nodeFolders are the paths a node keeps for itself, over the machine's.
var nodeFolders = []string{
	"/etc/kubernetes", "/etc/containerd", "/etc/cni",
	"/var/lib/kubelet", "/var/lib/containerd", "/var/lib/etcd", "/var/lib/cni",
	"/var/log", "/opt/cni/bin",
}

func sortedKeys[V any](m map[string]V) []string { return slices.Sorted(maps.Keys(m)) }

// prepareNode lays out a node's folder: its file system, its installed
// binaries (kubelet and kubeadm of the release, the node software), its
// hosts and resolv.conf, and the agent's configuration.
func prepareNode(p plan, s *state, n node, version string) (string, error) {
	dir := p.nodeDir(n)
	binds := map[string]string{}
	for _, f := range nodeFolders {
		src := filepath.Join(dir, "fs", strings.ReplaceAll(strings.Trim(f, "/"), "/", "-"))
		if err := os.MkdirAll(src, 0o755); err != nil {
			return "", err
		}
		binds[f] = src
	}
	binds[nodeBin] = filepath.Join(dir, "bin")
	binds["/etc/hosts"] = filepath.Join(dir, "hosts")
	binds["/etc/resolv.conf"] = filepath.Join(dir, "resolv.conf")
	if err := installNodeBinaries(p, n, version); err != nil {
		return "", err
	}
	if err := writeHostFiles(p, dir); err != nil {
		return "", err
	}
	if err := makeMountpoints(s, sortedKeys(binds)); err != nil {
		return "", err
	}
	root, err := nodeCgroupRoot(n)
	if err != nil {
		return "", err
	}
	if err := makeCgroup(s, root); err != nil {
		return "", err
	}
	cfg := agentConfig{Name: n.Name, Dir: dir, Binds: binds, CgroupRoot: root, Sandbox: registry + "/pause:" + pauseVersion(p)}
	b, err := json.MarshalIndent(cfg, "", "  ")
	if err != nil {
		return "", err
	}
	path := filepath.Join(dir, "agent.json")
	return path, os.WriteFile(path, b, 0o644)
}

// writeHostFiles: every host of the cluster by name, and a resolver that
// answers nothing (the nodes have no way out).
func writeHostFiles(p plan, dir string) error {
	hosts := "127.0.0.1 localhost\n" + lbIP + " control-plane.mvp.test\n"
	for _, n := range p.Nodes {
		hosts += n.IP + " " + n.Name + "\n"
	}
	if err := os.WriteFile(filepath.Join(dir, "hosts"), []byte(hosts), 0o644); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, "resolv.conf"), []byte("nameserver "+lbIP+"\noptions timeout:1 attempts:1\n"), 0o644)
}

// makeMountpoints makes, on the machine, the mount targets that do not
// exist (empty folders, and empty files for /etc files), recording each.
func makeMountpoints(s *state, targets []string) error {
	for _, t := range targets {
		if exists(t) {
			continue
		}
		var missing []string
		for d := filepath.Dir(t); !exists(d); d = filepath.Dir(d) {
			missing = append([]string{d}, missing...)
		}
		for _, d := range append(missing, t) {
			s.Mountpoints = append(s.Mountpoints, d)
			if err := os.Mkdir(d, 0o755); err != nil && !os.IsExist(err) {
				return err
			}
		}
		if err := s.save(); err != nil {
			return err
		}
	}
	return nil
}

// removeMountpoints removes the recorded mount targets that are empty.
func removeMountpoints(s *state) error {
	var left []string
	for i := len(s.Mountpoints) - 1; i >= 0; i-- {
		if err := os.Remove(s.Mountpoints[i]); err != nil && !os.IsNotExist(err) {
			left = append(left, s.Mountpoints[i])
		}
	}
	s.Mountpoints = left
	if err := s.save(); err != nil {
		return err
	}
	if len(left) > 0 {
		return fmt.Errorf("mount targets not empty, left in place: %s", strings.Join(left, ", "))
	}
	return nil
}

// startAgent starts the node's agent as PID 1 of new PID, mount and UTS
// namespaces in the node's network namespace, and waits until containerd
// answers.
func startAgent(ctx context.Context, log *os.File, p plan, s *state, n node, config string) error {
	self, err := os.Executable()
	if err != nil {
		return err
	}
	agentLog, err := os.OpenFile(filepath.Join(p.logDir(), n.Name+"-agent.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	defer agentLog.Close()
	cmd := exec.Command("nsenter", "--net=/run/netns/"+n.netns(), self, "agent", "-config", config)
	cmd.Stdout, cmd.Stderr = agentLog, agentLog
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Cloneflags: syscall.CLONE_NEWPID | syscall.CLONE_NEWNS | syscall.CLONE_NEWUTS}
	if err := cmd.Start(); err != nil {
		return err
	}
	s.Pids["agent/"+n.Name] = cmd.Process.Pid
	if err := s.save(); err != nil {
		return err
	}
	fmt.Fprintf(log, "agent pid %d, log %s\n", cmd.Process.Pid, agentLog.Name())
	go func() { _ = cmd.Wait() }() // reaped while this command lives
	return waitFor(ctx, 60*time.Second, "containerd to answer on "+n.Name, func() (bool, error) {
		if !alive(cmd.Process.Pid) {
			return false, fmt.Errorf("the agent exited; see %s", agentLog.Name())
		}
		_, err := output(ctx, "nsenter", nodeEnter(cmd.Process.Pid, "ctr", "version")...)
		return err == nil, nil
	})
}

// nodeEnter is nsenter's arguments that run a command inside a node.
func nodeEnter(pid int, args ...string) []string {
	return append([]string{"-t", strconv.Itoa(pid), "-m", "-u", "-n", "-p", "--wd=/", "--",
		"env", "PATH=" + nodePath, "CONTAINER_RUNTIME_ENDPOINT=unix://" + containerdSocket}, args...)
}

// inNode runs a command inside a node, its output to log.
func inNode(ctx context.Context, log *os.File, s *state, n node, args ...string) error {
	pid, err := agentPid(s, n)
	if err != nil {
		return err
	}
	return run(ctx, log, "nsenter", nodeEnter(pid, args...)...)
}

func agentPid(s *state, n node) (int, error) {
	pid := s.Pids["agent/"+n.Name]
	if !alive(pid) {
		return 0, fmt.Errorf("node %s is not running (no live agent)", n.Name)
	}
	return pid, nil
}

// askAgent sends a control request to a node's agent.
func askAgent(s *state, n node, verb, unit string) (string, error) {
	pid, err := agentPid(s, n)
	if err != nil {
		return "", err
	}
	return ask(fmt.Sprintf("/proc/%d/root%s", pid, agentSocket), verb, unit)
}

// waitFor polls cond every half second until it holds, fails, or the
// timeout passes.
func waitFor(ctx context.Context, timeout time.Duration, what string, cond func() (bool, error)) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var last error
	for {
		ok, err := cond()
		if err != nil {
			return err
		}
		if ok {
			return nil
		}
		select {
		case <-ctx.Done():
			if last != nil {
				return fmt.Errorf("timed out after %s waiting for %s: %v", timeout, what, last)
			}
			return fmt.Errorf("timed out after %s waiting for %s", timeout, what)
		case <-time.After(500 * time.Millisecond):
		}
	}
}
