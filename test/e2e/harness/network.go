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
	"net"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"sync"

	"golang.org/x/sys/unix"
)

// Network is two networks made of network namespaces, as a control plane
// has them: clients and etcd on the client network, peer traffic on the
// peer network (a server's --peer-advertise-ip). A "switch" namespace holds
// the two bridges; every host is a namespace with a veth into them. The
// machine's own interfaces, routes and sysctls are never touched, and the
// test process reaches hosts through Dial, from a client host of its own.
type Network struct {
	prefix string
	client *Host

	mu    sync.Mutex
	hosts []*Host
}

// Host is one namespace on the networks.
type Host struct {
	Name     string // the host's own name; its namespace is prefix+name
	Netns    string
	ClientIP string
	PeerIP   string // empty for a host on the client network only
	net      *Network
}

const (
	clientBridge = "client"
	peerBridge   = "peer"
	// ClientNet and PeerNet are the first three octets of each network,
	// in the range set aside for tests (198.18.0.0/15).
	ClientNet = "198.18.10."
	PeerNet   = "198.18.20."
)

// NewNetwork makes the switch and the test process's own client host.
// Namespaces named with prefix that an earlier, crashed run left are
// removed first.
func NewNetwork(ctx context.Context, prefix string) (*Network, error) {
	if os.Geteuid() != 0 {
		return nil, errors.New("network namespaces need root")
	}
	n := &Network{prefix: prefix}
	if err := n.removeLeftovers(ctx); err != nil {
		return nil, err
	}
	sw := prefix + "sw"
	steps := [][]string{{"netns", "add", sw}, {"-n", sw, "link", "set", "lo", "up"}}
	for _, br := range []string{clientBridge, peerBridge} {
		steps = append(steps, []string{"-n", sw, "link", "add", br, "type", "bridge"}, []string{"-n", sw, "link", "set", br, "up"})
	}
	if err := ipAll(ctx, steps); err != nil {
		n.Close(ctx)
		return nil, err
	}
	c, err := n.AddHost(ctx, "cl", ClientNet+"2", "")
	if err != nil {
		n.Close(ctx)
		return nil, err
	}
	n.client = c
	return n, nil
}

// AddHost makes a host with clientIP on the client network and, unless
// peerIP is empty, peerIP on the peer network.
func (n *Network) AddHost(ctx context.Context, name, clientIP, peerIP string) (*Host, error) {
	h := &Host{Name: name, Netns: n.prefix + name, ClientIP: clientIP, PeerIP: peerIP, net: n}
	n.mu.Lock()
	n.hosts = append(n.hosts, h)
	n.mu.Unlock()
	steps := [][]string{{"netns", "add", h.Netns}, {"-n", h.Netns, "link", "set", "lo", "up"}}
	steps = append(steps, h.plugSteps("eth0", clientBridge, clientIP)...)
	if peerIP != "" {
		steps = append(steps, h.plugSteps("eth1", peerBridge, peerIP)...)
	}
	return h, ipAll(ctx, steps)
}

// plugSteps connect the host to bridge through dev with address ip/24; the
// switch's end of the veth is port(dev).
func (h *Host) plugSteps(dev, bridge, ip string) [][]string {
	sw, port := h.net.prefix+"sw", h.port(dev)
	return [][]string{
		{"-n", sw, "link", "add", port, "type", "veth", "peer", "name", dev, "netns", h.Netns},
		{"-n", sw, "link", "set", port, "master", bridge, "up"},
		{"-n", h.Netns, "addr", "add", ip + "/24", "dev", dev},
		{"-n", h.Netns, "link", "set", dev, "up"},
	}
}

func (h *Host) port(dev string) string { return h.Name + "-" + dev }

// PeerLink takes the host's link to the peer network down or up again, at
// the switch: the host's own interface loses its carrier, as when a cable
// or a switch port fails.
func (h *Host) PeerLink(ctx context.Context, up bool) error {
	state := "down"
	if up {
		state = "up"
	}
	return ip(ctx, "-n", h.net.prefix+"sw", "link", "set", h.port("eth1"), state)
}

// BlockTo drops, on this host, every packet it sends to other's peer
// address: packets from other still arrive, this host's answers never
// reach it (one direction of the link blocked). UnblockTo lifts it.
func (h *Host) BlockTo(ctx context.Context, other *Host) error {
	return ip(ctx, "-n", h.Netns, "route", "add", "blackhole", other.PeerIP+"/32")
}

// UnblockTo lifts BlockTo.
func (h *Host) UnblockTo(ctx context.Context, other *Host) error {
	return ip(ctx, "-n", h.Netns, "route", "del", "blackhole", other.PeerIP+"/32")
}

// Wrap returns argv run inside the host's network namespace; ip netns
// exec execs in place, so the PID of the result is the program's own.
func (h *Host) Wrap(argv []string) []string {
	return append([]string{"ip", "netns", "exec", h.Netns}, argv...)
}

// Dial dials from the test process's client host, so that a client in
// this process reaches every host on the client network.
func (n *Network) Dial(ctx context.Context, network, addr string) (net.Conn, error) {
	return DialFrom("/run/netns/"+n.client.Netns)(ctx, network, addr)
}

// DialFrom dials from inside the network namespace at path.
//
// A socket belongs to the namespace of the thread that made it: each dial
// runs locked to a thread that joins the namespace and goes back to this
// process's own before it is unlocked. Should going back fail, the
// goroutine ends locked and the runtime ends the thread. A thread must not
// end for nothing: a child started with Pdeathsig from it would be killed.
func DialFrom(path string) func(ctx context.Context, network, addr string) (net.Conn, error) {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		type result struct {
			conn net.Conn
			err  error
		}
		done := make(chan result, 1)
		go func() {
			runtime.LockOSThread()
			conn, back, err := dialIn(ctx, path, network, addr)
			if back {
				runtime.UnlockOSThread()
			}
			done <- result{conn, err}
		}()
		r := <-done
		return r.conn, r.err
	}
}

// dialIn dials from the namespace at path on the calling, locked thread;
// back says whether the thread is in its own namespace again.
func dialIn(ctx context.Context, path, network, addr string) (conn net.Conn, back bool, err error) {
	own, err := unix.Open("/proc/thread-self/ns/net", unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, true, fmt.Errorf("open this thread's network namespace: %w", err)
	}
	defer unix.Close(own)
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, true, fmt.Errorf("open %s: %w", path, err)
	}
	defer unix.Close(fd)
	if err := unix.Setns(fd, unix.CLONE_NEWNET); err != nil {
		return nil, true, fmt.Errorf("join %s: %w", path, err)
	}
	var d net.Dialer
	conn, err = d.DialContext(ctx, network, addr)
	return conn, unix.Setns(own, unix.CLONE_NEWNET) == nil, err
}

// Close removes every namespace the network made (their veths go with
// them); it is safe to call twice.
func (n *Network) Close(ctx context.Context) error {
	n.mu.Lock()
	hosts := n.hosts
	n.hosts = nil
	n.mu.Unlock()
	var errs []error
	for _, h := range hosts {
		errs = append(errs, delNetns(ctx, h.Netns))
	}
	errs = append(errs, delNetns(ctx, n.prefix+"sw"))
	return errors.Join(errs...)
}

// removeLeftovers deletes namespaces named with the network's prefix.
func (n *Network) removeLeftovers(ctx context.Context) error {
	entries, err := os.ReadDir("/run/netns")
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	var errs []error
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), n.prefix) {
			errs = append(errs, delNetns(ctx, e.Name()))
		}
	}
	return errors.Join(errs...)
}

func delNetns(ctx context.Context, name string) error {
	if _, err := os.Stat("/run/netns/" + name); errors.Is(err, os.ErrNotExist) {
		return nil
	}
	return ip(ctx, "netns", "del", name)
}

func ipAll(ctx context.Context, steps [][]string) error {
	for _, args := range steps {
		if err := ip(ctx, args...); err != nil {
			return err
		}
	}
	return nil
}

func ip(ctx context.Context, args ...string) error {
	out, err := exec.CommandContext(ctx, "ip", args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("ip %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}
