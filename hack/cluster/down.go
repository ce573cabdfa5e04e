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
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// down removes everything the harness made, in the order that lets each
// part go: processes (a node's agent takes its whole PID namespace with
// it), cgroups, network namespaces, mount targets, node folders, and the
// global sysctls put back. It is safe to run twice and after any failed
// start: it reads what the state file recorded, and what is gone already
// is no error. Logs stay in _output/cluster/logs, each node's /var/log
// among them.
func down(ctx context.Context, p plan) error {
	release, err := lock(p.Out)
	if err != nil {
		return err
	}
	defer release()
	s, err := loadState(p.statePath())
	if err != nil {
		return err
	}
	if s.empty() {
		fmt.Println("cluster down: nothing to remove")
		return nil
	}
	log, err := os.OpenFile(filepath.Join(p.Out, "down.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	defer log.Close()
	var errs []error
	errs = append(errs, stopProcesses(s, 30*time.Second))
	errs = append(errs, removeCgroups(s, 30*time.Second))
	errs = append(errs, removeNetns(ctx, log, s))
	errs = append(errs, removeMountpoints(s))
	errs = append(errs, restoreSysctls(s))
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("cluster down: %w (run it again once fixed; %s still records what is left)", err, p.statePath())
	}
	if err := keepNodeLogs(p); err != nil {
		return err
	}
	for _, dir := range []string{filepath.Join(p.Out, "nodes"), p.adminConf(), filepath.Join(p.Out, "kubectl")} {
		if err := os.RemoveAll(dir); err != nil {
			return err
		}
	}
	fmt.Println("cluster down: removed everything (logs kept in " + p.logDir() + ")")
	return os.Remove(p.statePath())
}

// keepNodeLogs moves each node's /var/log (the kubelet's log) into the
// logs folder before the node's folder is removed.
func keepNodeLogs(p plan) error {
	found, err := filepath.Glob(filepath.Join(p.Out, "nodes", "*", "fs", "var-log"))
	if err != nil {
		return err
	}
	for _, dir := range found {
		node := filepath.Base(filepath.Dir(filepath.Dir(dir)))
		to := filepath.Join(p.logDir(), node+"-var-log")
		if err := os.RemoveAll(to); err != nil {
			return err
		}
		if err := os.MkdirAll(p.logDir(), 0o755); err != nil {
			return err
		}
		if err := os.Rename(dir, to); err != nil {
			return fmt.Errorf("keep %s's logs: %w", node, err)
		}
	}
	return nil
}

// stopProcesses ends every recorded process: SIGTERM, then SIGKILL after
// the grace period.
func stopProcesses(s *state, grace time.Duration) error {
	for _, pid := range s.Pids {
		if alive(pid) {
			_ = syscall.Kill(pid, syscall.SIGTERM)
		}
	}
	deadline := time.Now().Add(grace)
	for _, name := range sortedKeys(s.Pids) {
		pid := s.Pids[name]
		for alive(pid) && time.Now().Before(deadline) {
			time.Sleep(100 * time.Millisecond)
		}
		if alive(pid) {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
	}
	var left []string
	for _, name := range sortedKeys(s.Pids) {
		pid := s.Pids[name]
		for i := 0; i < 50 && alive(pid); i++ {
			time.Sleep(100 * time.Millisecond)
		}
		if alive(pid) {
			left = append(left, fmt.Sprintf("%s (pid %d)", name, pid))
			continue
		}
		delete(s.Pids, name)
	}
	if err := s.save(); err != nil {
		return err
	}
	if len(left) > 0 {
		return fmt.Errorf("still running after SIGKILL: %s", strings.Join(left, ", "))
	}
	return nil
}

// restoreSysctls writes back every recorded sysctl's earlier value.
func restoreSysctls(s *state) error {
	var errs []error
	for _, key := range sortedKeys(s.Sysctls) {
		file := "/proc/sys/" + strings.ReplaceAll(key, ".", "/")
		if err := os.WriteFile(file, []byte(s.Sysctls[key]), 0o644); err != nil {
			errs = append(errs, fmt.Errorf("sysctl %s: %w", key, err))
			continue
		}
		delete(s.Sysctls, key)
	}
	errs = append(errs, s.save())
	return errors.Join(errs...)
}
