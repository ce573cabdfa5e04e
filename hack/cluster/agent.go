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
	"encoding/json"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// The node agent is PID 1 of a node: a process in new PID, mount and UTS
// namespaces and in the node's network namespace. It gives the node its
// own file system where a machine keeps per-host state, runs containerd,
// and supervises kubelet as systemd's unit from kubeadm's packages does:
// started once kubeadm has written its configuration, restarted when it
// exits, stopped and started when kubeadm asks through systemctl. When
// the agent exits, the kernel ends every process of the node with it.

// agentConfig is what the harness tells a node's agent.
type agentConfig struct {
	Name       string
	Dir        string            // the node's folder on the machine
	Binds      map[string]string // path in the node -> folder or file under Dir (or a parts folder)
	CgroupRoot string            // kubelet's --cgroup-root
	Sandbox    string            // the pause image
}

// Where things are inside a node.
const (
	nodeBin          = "/opt/mvp/bin" // the node's "installed packages": kubelet, kubeadm, containerd, ...
	agentSocket      = "/run/mvp/agent.sock"
	containerdSocket = "/run/containerd/containerd.sock"
	kubeletConfig    = "/var/lib/kubelet/config.yaml"
	kubeadmFlags     = "/var/lib/kubelet/kubeadm-flags.env"
	// restartDelay is how long after an exit a service starts again; the
	// packaged kubelet unit waits 10 s, the harness less to keep runs short.
	restartDelay = 2 * time.Second
)

// nodePath is the PATH of every command in a node.
const nodePath = nodeBin + ":/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

func agentMain(configPath string) error {
	var cfg agentConfig
	b, err := os.ReadFile(configPath)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(b, &cfg); err != nil {
		return fmt.Errorf("%s: %w", configPath, err)
	}
	if os.Getpid() != 1 {
		return fmt.Errorf("the agent must be PID 1 of a new PID namespace (it is %d)", os.Getpid())
	}
	if err := unix.Sethostname([]byte(cfg.Name)); err != nil {
		return fmt.Errorf("hostname: %w", err)
	}
	if err := mountNode(cfg); err != nil {
		return fmt.Errorf("mounts: %w", err)
	}
	os.Setenv("PATH", nodePath)
	if err := os.WriteFile("/etc/containerd/config.toml", []byte(containerdConfig(cfg)), 0o644); err != nil {
		return err
	}
	sup := newSupervisor()
	sup.add(&service{name: "containerd", command: containerdCommand, ready: func() bool { return exists("/etc/containerd/config.toml") }})
	sup.add(&service{name: "kubelet", command: kubeletCommand(cfg), ready: func() bool { return exists(kubeletConfig) }})
	stop := make(chan os.Signal, 1)
	signal.Notify(stop, syscall.SIGTERM, syscall.SIGINT)
	if err := serveControl(sup); err != nil {
		return err
	}
	go sup.run()
	fmt.Printf("agent %s: up\n", cfg.Name)
	<-stop
	fmt.Printf("agent %s: stopping\n", cfg.Name)
	sup.shutdown(20 * time.Second)
	return nil
}

// mountNode makes the node's mounts its own (private, then shared within
// the node so that kubelet's and containerd's mounts reach the
// containers), then puts the node's folders over the machine's.
func mountNode(cfg agentConfig) error {
	if err := unix.Mount("", "/", "", unix.MS_REC|unix.MS_PRIVATE, ""); err != nil {
		return err
	}
	if err := unix.Mount("", "/", "", unix.MS_REC|unix.MS_SHARED, ""); err != nil {
		return err
	}
	if err := unix.Mount("proc", "/proc", "proc", unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, ""); err != nil {
		return fmt.Errorf("/proc: %w", err)
	}
	if err := unix.Mount("tmpfs", "/run", "tmpfs", unix.MS_NOSUID|unix.MS_NODEV, "mode=755"); err != nil {
		return fmt.Errorf("/run: %w", err)
	}
	for _, target := range sortedKeys(cfg.Binds) {
		if err := unix.Mount(cfg.Binds[target], target, "", unix.MS_BIND|unix.MS_REC, ""); err != nil {
			return fmt.Errorf("bind %s on %s: %w", cfg.Binds[target], target, err)
		}
	}
	return os.MkdirAll(filepath.Dir(agentSocket), 0o755)
}

func containerdCommand() (string, []string, error) {
	return filepath.Join(nodeBin, "containerd"), []string{"--config", "/etc/containerd/config.toml"}, nil
}

// kubeletCommand is the command line of kubeadm's systemd drop-in: the
// kubeconfigs, the configuration file, kubeadm's flags file, and the
// node's own extra flags.
func kubeletCommand(cfg agentConfig) func() (string, []string, error) {
	return func() (string, []string, error) {
		args := []string{
			"--bootstrap-kubeconfig=/etc/kubernetes/bootstrap-kubelet.conf",
			"--kubeconfig=/etc/kubernetes/kubelet.conf",
			"--config=" + kubeletConfig,
		}
		flags, err := readEnvFlags(kubeadmFlags, "KUBELET_KUBEADM_ARGS")
		if err != nil {
			return "", nil, err
		}
		args = append(args, flags...)
		args = append(args, "--cgroup-root="+cfg.CgroupRoot)
		return filepath.Join(nodeBin, "kubelet"), args, nil
	}
}

// readEnvFlags reads KEY="--a=b --c=d" from a systemd environment file.
func readEnvFlags(file, key string) ([]string, error) {
	b, err := os.ReadFile(file)
	if os.IsNotExist(err) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), key+"="); ok {
			return strings.Fields(strings.Trim(v, `"`)), nil
		}
	}
	return nil, nil
}

func containerdConfig(cfg agentConfig) string {
	return `version = 3
root = "/var/lib/containerd"
state = "/run/containerd"

[grpc]
  address = "` + containerdSocket + `"

[plugins.'io.containerd.cri.v1.runtime']
  # The machine's bounding set lacks CAP_SYS_RESOURCE: no negative
  # oom_score_adj, so containers get at least containerd's own.
  restrict_oom_score_adj = true
  [plugins.'io.containerd.cri.v1.runtime'.containerd]
    default_runtime_name = "runc"
    [plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runc.options]
        BinaryName = "` + nodeBin + `/runc"
        SystemdCgroup = false
  [plugins.'io.containerd.cri.v1.runtime'.cni]
    bin_dirs = ["/opt/cni/bin"]
    conf_dir = "/etc/cni/net.d"

[plugins.'io.containerd.cri.v1.images']
  snapshotter = "overlayfs"
  [plugins.'io.containerd.cri.v1.images'.pinned_images]
    sandbox = "` + cfg.Sandbox + `"
`
}

func exists(p string) bool { _, err := os.Stat(p); return err == nil }
