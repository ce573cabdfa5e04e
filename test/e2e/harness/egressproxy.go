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
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// EgressProxy is a real HTTP CONNECT proxy, Debian's tinyproxy, listening
// on a loopback TCP port and reached through a Unix socket that socat
// forwards to it: what an egress selector's HTTPConnect selection over
// `transport.uds` dials. `make test-deps` installs both programs.
type EgressProxy struct {
	// Socket is the Unix socket clients dial.
	Socket string
	// Addr is tinyproxy's TCP address behind the socket.
	Addr string
	// LogPath is tinyproxy's own log (its LogFile), CONNECT lines included.
	LogPath string

	dir, conf   string
	tiny, socat *Process
}

// StartEgressProxy starts tinyproxy on ip and socat in front of it, with
// their files under dir, and waits until a CONNECT through the socket is
// answered.
func StartEgressProxy(ctx context.Context, dir, ip string) (*EgressProxy, error) {
	for _, prog := range []string{"tinyproxy", "socat"} {
		if _, err := exec.LookPath(prog); err != nil {
			return nil, fmt.Errorf("%s is not installed: run `make test-deps` (hack/install-test-deps.sh)", prog)
		}
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	port, err := freePort(ip)
	if err != nil {
		return nil, err
	}
	p := &EgressProxy{
		Socket:  filepath.Join(dir, "egress.sock"),
		Addr:    net.JoinHostPort(ip, itoa(port)),
		LogPath: filepath.Join(dir, "tinyproxy.log"),
		dir:     dir,
		conf:    filepath.Join(dir, "tinyproxy.conf"),
	}
	// Loopback clients only; every CONNECT port is allowed (no ConnectPort
	// line); LogLevel Connect logs each request line.
	conf := fmt.Sprintf("Port %d\nListen %s\nTimeout 600\nMaxClients 200\nAllow 127.0.0.0/8\nLogFile %q\nLogLevel Connect\n", port, ip, p.LogPath)
	if err := os.WriteFile(p.conf, []byte(conf), 0o600); err != nil {
		return nil, err
	}
	if err := p.StartProxy(ctx); err != nil {
		return nil, err
	}
	p.socat, err = startProcess("socat", filepath.Join(dir, "socat.log"), "", nil,
		[]string{"socat", "UNIX-LISTEN:" + p.Socket + ",fork,unlink-early", "TCP:" + p.Addr})
	if err != nil {
		p.Close()
		return nil, err
	}
	err = poll(ctx, 100*time.Millisecond, 30*time.Second, func() (bool, error) {
		if p.socat.Exited() {
			return false, fmt.Errorf("socat exited: %v", p.socat.ExitError())
		}
		return p.answers()
	})
	if err != nil {
		p.Close()
		return nil, fmt.Errorf("the egress proxy at %s never answered: %w", p.Socket, err)
	}
	return p, nil
}

// answers sends a CONNECT for a port where nothing listens through the
// socket; any HTTP answer from tinyproxy means the whole path is up.
func (p *EgressProxy) answers() (bool, error) {
	c, err := net.DialTimeout("unix", p.Socket, time.Second)
	if err != nil {
		return false, err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(2 * time.Second))
	if _, err := fmt.Fprintf(c, "CONNECT 127.0.0.1:1 HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"); err != nil {
		return false, err
	}
	buf := make([]byte, 12)
	n, err := c.Read(buf)
	if n >= 5 && string(buf[:5]) == "HTTP/" {
		return true, nil
	}
	return false, fmt.Errorf("no HTTP answer (%q, %v)", buf[:n], err)
}

// StartProxy starts tinyproxy (again) with its configuration, port and log.
func (p *EgressProxy) StartProxy(ctx context.Context) error {
	tiny, err := startProcess("tinyproxy", filepath.Join(p.dir, "tinyproxy.out"), "", nil, []string{"tinyproxy", "-d", "-c", p.conf})
	if err != nil {
		return err
	}
	p.tiny = tiny
	return poll(ctx, 100*time.Millisecond, 30*time.Second, func() (bool, error) {
		if tiny.Exited() {
			return false, fmt.Errorf("tinyproxy exited: %v", tiny.ExitError())
		}
		c, err := net.DialTimeout("tcp", p.Addr, time.Second)
		if err != nil {
			return false, err
		}
		c.Close()
		return true, nil
	})
}

// StopProxy stops tinyproxy; socat goes on accepting on the socket, and
// every tunnel is cut.
func (p *EgressProxy) StopProxy() error {
	if p.tiny == nil {
		return nil
	}
	return p.tiny.Stop(10 * time.Second)
}

// Running reports whether tinyproxy is up (frozen or not): StartProxy
// would find its port taken.
func (p *EgressProxy) Running() bool { return p.tiny != nil && !p.tiny.Exited() }

// Freeze stops tinyproxy with SIGSTOP: socat still accepts and forwards,
// the kernel still queues connections, and no CONNECT is ever answered.
func (p *EgressProxy) Freeze() error { return p.tiny.Signal(syscall.SIGSTOP) }

// Thaw resumes a frozen tinyproxy.
func (p *EgressProxy) Thaw() error { return p.tiny.Signal(syscall.SIGCONT) }

// Connects counts the CONNECT requests for addr in tinyproxy's log.
func (p *EgressProxy) Connects(addr string) (int, error) {
	data, err := os.ReadFile(p.LogPath)
	if err != nil {
		return 0, err
	}
	return strings.Count(string(data), "CONNECT "+addr+" HTTP/"), nil
}

// ConnectLines returns the log lines of CONNECT requests for addr.
func (p *EgressProxy) ConnectLines(addr string) []string {
	return LogLines(p.LogPath, "CONNECT "+addr+" HTTP/")
}

// LogLines returns the lines of the file at path that contain s.
func LogLines(path, s string) []string {
	data, _ := os.ReadFile(path)
	var lines []string
	for _, l := range strings.Split(string(data), "\n") {
		if strings.Contains(l, s) {
			lines = append(lines, l)
		}
	}
	return lines
}

// Close stops tinyproxy, and socat with the children it forked per
// connection (its whole process group).
func (p *EgressProxy) Close() {
	_ = p.StopProxy()
	if p.socat != nil && !p.socat.Exited() {
		_ = syscall.Kill(-p.socat.PID(), syscall.SIGKILL)
		_ = p.socat.Wait(10 * time.Second)
	}
}
