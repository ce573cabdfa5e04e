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
	"os/exec"
	"path/filepath"
	"syscall"
	"time"
)

// The load balancer is haproxy, as kubeadm's HA guide sets it up: TCP to
// every control-plane node's server, each checked on /readyz.

func haproxyConfig(p plan) string {
	cfg := fmt.Sprintf(`global
  log stdout format raw local0
  # Within the machine's open-files limit (haproxy needs about two a connection).
  maxconn 8000
defaults
  log global
  mode tcp
  option tcplog
  timeout connect 5s
  # Watches stay open for long: as long as a server's own timeout.
  timeout client 1h
  timeout server 1h
frontend apiserver
  bind %s:%d
  default_backend control-plane
backend control-plane
  option httpchk GET /readyz
  http-check expect status 200
  balance roundrobin
`, lbIP, apiPort)
	for _, n := range p.controlPlanes() {
		// A client's connection stays on its server until it closes: when
		// the server's /readyz fails (its etcd member restarting), close it,
		// so the client reconnects to a ready one instead of timing out.
		cfg += fmt.Sprintf("  server %s %s check check-ssl verify none inter 1s fall 2 rise 1 on-marked-down shutdown-sessions\n", n.Name, n.endpoint())
	}
	return cfg
}

// startLB starts haproxy in the load balancer's namespace.
func startLB(ctx context.Context, log *os.File, p plan, s *state) error {
	if _, err := exec.LookPath("haproxy"); err != nil {
		return fmt.Errorf("haproxy is not installed (make cluster-deps installs it): %w", err)
	}
	cfgPath := filepath.Join(p.Out, "haproxy.cfg")
	if err := os.WriteFile(cfgPath, []byte(haproxyConfig(p)), 0o644); err != nil {
		return err
	}
	if err := run(ctx, log, "haproxy", "-c", "-f", cfgPath); err != nil {
		return err
	}
	lbLog, err := os.OpenFile(filepath.Join(p.logDir(), "haproxy.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	defer lbLog.Close()
	cmd := exec.Command("nsenter", "--net=/run/netns/"+lbNS, "haproxy", "-db", "-f", cfgPath)
	cmd.Stdout, cmd.Stderr = lbLog, lbLog
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		return err
	}
	s.Pids["haproxy"] = cmd.Process.Pid
	if err := s.save(); err != nil {
		return err
	}
	go func() { _ = cmd.Wait() }()
	return waitFor(ctx, 10*time.Second, "haproxy to run", func() (bool, error) {
		if !alive(cmd.Process.Pid) {
			return false, fmt.Errorf("haproxy exited; see %s", lbLog.Name())
		}
		return true, nil
	})
}
