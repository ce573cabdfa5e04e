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
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/sync/errgroup"

	"github.com/mvp-apiserver/kube-apiserver/test/e2e/harness"
)

// maxFleet is the most servers the servers curve starts (their addresses
// are <fleet prefix>1 to 9).
const maxFleet = 9

// joinDeadline bounds the wait for every server to proxy to a new one.
const joinDeadline = time.Minute

// fleetSettle is how long a restarted fleet is left alone before its idle
// window: longer than idleSettle, so that the window is past the first
// half minute after peers find each other, when a peer's OpenAPI root is
// still read at every refresh.
const fleetSettle = 45 * time.Second

// serverCurve starts n-1 servers without batch/v1, then one that serves
// it, and times how long after that one is ready every other proxies a
// LIST of Jobs to it. Then all n are restarted with the gate on and
// measured idle (CPU, and the bytes they exchange), and restarted with it
// off and measured again.
func serverCurve(ctx context.Context, c *harness.Cluster, spec pairSpec, n int, idle time.Duration) (serverPoint, error) {
	var pt serverPoint
	opts := make([]harness.ServerOptions, n)
	for i := range opts {
		opts[i] = harness.ServerOptions{Name: fmt.Sprintf("%s-s%d", spec.key, i+1), Binary: spec.binary, IP: spec.fleet + strconv.Itoa(i+1), Gate: harness.On(true)}
		if i < n-1 {
			opts[i].Args = []string{"--runtime-config=batch/v1=false"}
		}
	}
	old, err := startAll(ctx, c, opts[:n-1])
	if err != nil {
		return pt, err
	}
	newest, err := c.LaunchServer(opts[n-1])
	if err != nil {
		return pt, err
	}
	ready, err := readyAt(ctx, newest)
	if err != nil {
		return pt, err
	}
	if pt.JoinProxiedS, err = timeJoin(ctx, old, ready); err != nil {
		return pt, err
	}

	servers := append(old, newest)
	on, err := restartAllIdle(ctx, c, servers, true, idle)
	if err != nil {
		return pt, err
	}
	off, err := restartAllIdle(ctx, c, on.servers, false, idle)
	if err != nil {
		return pt, err
	}
	pt.IdleCPUOnPct, pt.IdleCPUOffPct = round(mean(on.cpuPct), 2), round(mean(off.cpuPct), 2)
	pt.MVPIdleCPUPct = round(mean(on.cpuPct)-mean(off.cpuPct), 2)
	pt.PeerBytesPerMin, pt.PeerBytesPerMinGateOff = round(mean(on.bytesPerMin), 0), round(mean(off.bytesPerMin), 0)
	pt.PeerBytesPerMinPerPeer = round(mean(on.bytesPerMin)/float64(n-1), 0)
	return pt, nil
}

// startAll starts servers at once and waits until each is ready.
func startAll(ctx context.Context, c *harness.Cluster, opts []harness.ServerOptions) ([]*harness.Server, error) {
	servers := make([]*harness.Server, len(opts))
	g, gctx := errgroup.WithContext(ctx)
	for i, o := range opts {
		g.Go(func() error {
			s, err := c.StartServer(gctx, o)
			if err != nil {
				return fmt.Errorf("%s: %w", o.Name, err)
			}
			servers[i] = s
			return nil
		})
	}
	return servers, g.Wait()
}

// readyAt polls the server's /readyz every 20 ms (the harness's own wait
// polls every 250 ms) and returns when it first answered 200.
func readyAt(ctx context.Context, s *harness.Server) (time.Time, error) {
	client := s.HTTPClient()
	var at time.Time
	err := pollUntil(ctx, 20*time.Millisecond, 2*time.Minute, func() (bool, string, error) {
		if s.Exited() {
			return false, "", fmt.Errorf("%s exited: %v\n%s", s.Name, s.ExitError(), s.LogTail(30))
		}
		resp, err := client.Get(s.URL + "/readyz")
		if err != nil {
			return false, err.Error(), nil
		}
		resp.Body.Close()
		at = time.Now()
		return resp.StatusCode == http.StatusOK, fmt.Sprintf("%s /readyz %d", s.Name, resp.StatusCode), nil
	})
	return at, err
}

// timeJoin polls each of servers with a LIST of Jobs (which only the new
// server serves) every 50 ms until it answers 200, and returns the
// slowest server's time since ready in seconds (-1 past joinDeadline).
func timeJoin(ctx context.Context, servers []*harness.Server, ready time.Time) (float64, error) {
	took := make([]time.Duration, len(servers))
	g, gctx := errgroup.WithContext(ctx)
	for i, s := range servers {
		t := target{name: s.Name, client: s.HTTPClient(), url: s.URL + "/apis/batch/v1/jobs?limit=1"}
		g.Go(func() error {
			for t.get(gctx) != nil {
				if time.Since(ready) > joinDeadline {
					took[i] = -1
					return nil
				}
				if err := pause(gctx, 50*time.Millisecond); err != nil {
					return err
				}
			}
			took[i] = time.Since(ready)
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return 0, err
	}
	worst := time.Duration(0)
	for _, d := range took {
		if d < 0 {
			return -1, nil
		}
		worst = max(worst, d)
	}
	return round(worst.Seconds(), 3), nil
}

// fleetIdle is the idle window of every server of a fleet.
type fleetIdle struct {
	cpuPct, bytesPerMin []float64
	servers             []*harness.Server // the servers measured
}

// restartAllIdle stops every server, starts them all again at once with
// the gate as given (same flags otherwise), leaves them fleetSettle, and
// measures each over d: its CPU, and the bytes on its connections to and
// from the others.
func restartAllIdle(ctx context.Context, c *harness.Cluster, servers []*harness.Server, gate bool, d time.Duration) (fleetIdle, error) {
	var res fleetIdle
	opts := make([]harness.ServerOptions, len(servers))
	g := errgroup.Group{}
	for i, s := range servers {
		opts[i] = s.Opts
		opts[i].Gate = harness.On(gate)
		g.Go(func() error { return s.Stop(time.Minute) })
	}
	if err := g.Wait(); err != nil {
		return res, err
	}
	var err error
	if res.servers, err = startAll(ctx, c, opts); err != nil {
		return res, err
	}
	if err := pause(ctx, fleetSettle); err != nil {
		return res, err
	}
	pids := make([]int, len(res.servers))
	for i, s := range res.servers {
		pids[i] = s.PID()
		if _, err := harness.LiveHeap(ctx, s.HTTPClient(), s.URL); err != nil { // a collection before, as idleLoad does
			return res, err
		}
	}
	cpu0, bytes0, err := fleetCounters(pids)
	if err != nil {
		return res, err
	}
	start := time.Now()
	if err := pause(ctx, d); err != nil {
		return res, err
	}
	cpu1, bytes1, err := fleetCounters(pids)
	if err != nil {
		return res, err
	}
	window := time.Since(start)
	for i := range pids {
		res.cpuPct = append(res.cpuPct, 100*(cpu1[i]-cpu0[i]).Seconds()/window.Seconds())
		res.bytesPerMin = append(res.bytesPerMin, float64(bytes1[i].since(bytes0[i]))/window.Minutes())
	}
	return res, nil
}

// fleetCounters reads each process's CPU time and its peer connections'
// byte counts.
func fleetCounters(pids []int) ([]time.Duration, []socketBytes, error) {
	cpu := make([]time.Duration, len(pids))
	for i, pid := range pids {
		var err error
		if cpu[i], err = cpuTime(pid); err != nil {
			return nil, nil, err
		}
	}
	b, err := peerSocketBytes(pids)
	return cpu, b, err
}

func mean(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	s := 0.0
	for _, x := range v {
		s += x
	}
	return s / float64(len(v))
}

// socketBytes are one process's TCP sockets to and from the other
// processes measured, by inode: bytes sent plus received.
type socketBytes map[uint32]uint64

// since is the bytes carried between an earlier reading and this one; a
// socket opened in between counts from zero.
func (now socketBytes) since(then socketBytes) uint64 {
	var total uint64
	for inode, b := range now {
		total += b - min(then[inode], b)
	}
	return total
}

// peerSocketBytes reads, for each process, its TCP sockets whose other
// end is a socket of another of the processes (from the kernel's socket
// diagnostics, with TCP_INFO byte counters), so a server's connections to
// clients and to etcd are left out.
func peerSocketBytes(pids []int) ([]socketBytes, error) {
	owner := map[uint32]int{} // socket inode -> index of its process
	for i, pid := range pids {
		inodes, err := socketInodes(pid)
		if err != nil {
			return nil, err
		}
		for _, ino := range inodes {
			owner[ino] = i
		}
	}
	socks, err := netlink.SocketDiagTCPInfo(syscall.AF_INET)
	if err != nil {
		return nil, fmt.Errorf("reading TCP sockets (sock_diag): %w", err)
	}
	endpoint := func(ip net.IP, port uint16) string { return net.JoinHostPort(ip.String(), strconv.Itoa(int(port))) }
	local := map[string]int{} // local address of a measured socket -> its process
	for _, s := range socks {
		if i, ok := owner[s.InetDiagMsg.INode]; ok {
			local[endpoint(s.InetDiagMsg.ID.Source, s.InetDiagMsg.ID.SourcePort)] = i
		}
	}
	out := make([]socketBytes, len(pids))
	for i := range out {
		out[i] = socketBytes{}
	}
	for _, s := range socks {
		i, ok := owner[s.InetDiagMsg.INode]
		if !ok || s.TCPInfo == nil {
			continue
		}
		if j, ok := local[endpoint(s.InetDiagMsg.ID.Destination, s.InetDiagMsg.ID.DestinationPort)]; ok && j != i {
			out[i][s.InetDiagMsg.INode] = s.TCPInfo.Bytes_sent + s.TCPInfo.Bytes_received
		}
	}
	return out, nil
}

// socketInodes lists the inodes of a process's sockets, from its open
// files.
func socketInodes(pid int) ([]uint32, error) {
	dir := "/proc/" + strconv.Itoa(pid) + "/fd"
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var out []uint32
	for _, e := range entries {
		link, err := os.Readlink(dir + "/" + e.Name())
		if err != nil {
			continue // closed since the listing
		}
		if s, ok := strings.CutPrefix(link, "socket:["); ok {
			if ino, err := strconv.ParseUint(strings.TrimSuffix(s, "]"), 10, 32); err == nil {
				out = append(out, uint32(ino))
			}
		}
	}
	return out, nil
}
