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

package harness

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Process is a child process whose output goes to a log file.
type Process struct {
	Name    string
	LogPath string
	Args    []string

	cmd  *exec.Cmd
	done chan struct{}
	mu   sync.Mutex
	err  error
}

// startProcess runs argv, with env added to ours and output appended to logPath. A non-empty
// hostname runs it in its own UTS namespace under that hostname (in an
// unprivileged user namespace too when not root).
func startProcess(name, logPath, hostname string, env, argv []string) (*Process, error) {
	if hostname != "" {
		wrap := []string{"unshare", "--uts"}
		if os.Geteuid() != 0 {
			wrap = []string{"unshare", "--user", "--map-root-user", "--uts"}
		}
		// unshare without --fork execs in place, so the PID we hold is the
		// server's own: signals (SIGSTOP, SIGKILL) reach it directly.
		argv = append(append(wrap, "sh", "-c", `hostname "$0" && exec "$@"`, hostname), argv...)
	}
	logFile, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.Env = append(os.Environ(), env...)
	// Die with the test process, so nothing outlives a crashed run.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL, Setpgid: true}
	if err := cmd.Start(); err != nil {
		logFile.Close()
		return nil, fmt.Errorf("starting %s: %w", name, err)
	}
	p := &Process{Name: name, LogPath: logPath, Args: argv, cmd: cmd, done: make(chan struct{})}
	go func() {
		err := cmd.Wait()
		logFile.Close()
		p.mu.Lock()
		p.err = err
		p.mu.Unlock()
		close(p.done)
	}()
	return p, nil
}

// PID is the process ID.
func (p *Process) PID() int { return p.cmd.Process.Pid }

// Exited reports whether the process has ended.
func (p *Process) Exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// ExitError is how the process ended, once it has.
func (p *Process) ExitError() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.err
}

// Wait waits up to timeout for the process to end.
func (p *Process) Wait(timeout time.Duration) error {
	select {
	case <-p.done:
		return nil
	case <-time.After(timeout):
		return fmt.Errorf("%s (pid %d) still running after %s", p.Name, p.PID(), timeout)
	}
}

// Signal sends sig to the process.
func (p *Process) Signal(sig syscall.Signal) error {
	if p.Exited() {
		return nil
	}
	return p.cmd.Process.Signal(sig)
}

// Kill ends the process with SIGKILL and waits for it.
func (p *Process) Kill() {
	_ = p.Signal(syscall.SIGKILL)
	_ = p.Wait(30 * time.Second)
}

// Stop ends the process gracefully (SIGTERM), and with SIGKILL after timeout.
func (p *Process) Stop(timeout time.Duration) error {
	_ = p.Signal(syscall.SIGCONT) // a frozen process cannot handle SIGTERM
	if err := p.Signal(syscall.SIGTERM); err != nil {
		return err
	}
	if err := p.Wait(timeout); err != nil {
		p.Kill()
		return err
	}
	return nil
}

// freePort returns a TCP port free on ip at the time of the call, below
// the kernel's ephemeral range where that leaves room: a port the kernel
// picked (listening on port 0) is one it can hand to any outgoing
// connection before the process we start binds it, and with thousands of
// connections on loopback that happened (etcd: "bind: address already in
// use"). Ports handed out before are not handed out again.
func freePort(ip string) (int, error) {
	low := ephemeralLow()
	if low-minPort < 1000 {
		return kernelPort(ip)
	}
	portsMu.Lock()
	defer portsMu.Unlock()
	for range 100 {
		port := minPort + rand.IntN(low-minPort)
		if portsGiven[port] {
			continue
		}
		l, err := net.Listen("tcp", net.JoinHostPort(ip, itoa(port)))
		if err != nil {
			continue
		}
		l.Close()
		portsGiven[port] = true
		return port, nil
	}
	return 0, fmt.Errorf("no free TCP port on %s in [%d, %d) after 100 tries", ip, minPort, low)
}

// minPort is the lowest port freePort hands out: above the ports of
// well-known daemons (the kubelet's 10250, the controllers' 10257 and 10259).
const minPort = 20000

var (
	portsMu    sync.Mutex
	portsGiven = map[int]bool{}
)

// ephemeralLow is the first port of the kernel's ephemeral range (32768
// when it cannot be read).
func ephemeralLow() int {
	data, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range")
	if err != nil {
		return 32768
	}
	f := strings.Fields(string(data))
	if len(f) != 2 {
		return 32768
	}
	low, err := strconv.Atoi(f[0])
	if err != nil {
		return 32768
	}
	return low
}

// kernelPort is a port the kernel picks on ip.
func kernelPort(ip string) (int, error) {
	l, err := net.Listen("tcp", net.JoinHostPort(ip, "0"))
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// poll calls cond every interval until it returns true, ctx ends or
// timeout passes; it returns cond's last error on timeout.
func poll(ctx context.Context, interval, timeout time.Duration, cond func() (bool, error)) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var last error
	for {
		ok, err := cond()
		if ok {
			return nil
		}
		if err != nil {
			last = err
		}
		select {
		case <-ctx.Done():
			if last == nil {
				last = errors.New("condition not met")
			}
			return fmt.Errorf("after %s: %w", timeout, last)
		case <-time.After(interval):
		}
	}
}

func itoa(i int) string { return strconv.Itoa(i) }
