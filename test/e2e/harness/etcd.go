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
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"time"
)

// Etcd is an etcd cluster built from the pinned module: one member, or
// several for the specs that lose members.
type Etcd struct {
	Members []*EtcdMember
	// URL is every member's client URL, comma-separated, as
	// --etcd-servers takes them.
	URL    string
	client *http.Client
}

// EtcdMember is one member of an Etcd: its process, once started, and
// what it needs to be started again with the same identity and data.
type EtcdMember struct {
	*Process
	Name      string
	ClientURL string
	argv      []string
	logPath   string
}

// EtcdOptions say where an Etcd runs. The zero value is one member on
// loopback.
type EtcdOptions struct {
	// Members is how many members; 1 when 0.
	Members int
	// Host runs a single member on a host of a Network (ports 2379 and
	// 2380 of its client address); Dial then reaches it.
	Host *Host
	Dial func(ctx context.Context, network, addr string) (net.Conn, error)
}

// StartEtcd starts the members o asks for, with their data under dir,
// and waits until every one reports healthy.
func StartEtcd(ctx context.Context, binDir, dir string, o EtcdOptions) (*Etcd, error) {
	n := max(o.Members, 1)
	if o.Host != nil && n != 1 {
		return nil, fmt.Errorf("an etcd on a network host has one member, not %d", n)
	}
	members, err := etcdMembers(binDir, dir, n, o.Host)
	if err != nil {
		return nil, err
	}
	urls := make([]string, n)
	for i, m := range members {
		urls[i] = m.ClientURL
	}
	e := &Etcd{Members: members, URL: strings.Join(urls, ","),
		client: &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DialContext: o.Dial}}}
	for _, m := range members {
		if err := m.start(); err != nil {
			e.Stop(time.Second)
			return nil, err
		}
	}
	for _, m := range members {
		if err := e.WaitHealthy(ctx, m, time.Minute); err != nil {
			e.Stop(time.Second)
			return nil, err
		}
	}
	return e, nil
}

// etcdMembers lays out n members: names, ports, data directories, and
// the command line each is started with.
func etcdMembers(binDir, dir string, n int, host *Host) ([]*EtcdMember, error) {
	type urls struct{ client, peer string }
	addrs := make([]urls, n)
	for i := range addrs {
		if host != nil {
			addrs[i] = urls{"http://" + host.ClientIP + ":2379", "http://" + host.ClientIP + ":2380"}
			continue
		}
		cp, err := freePort("127.0.0.1")
		if err != nil {
			return nil, err
		}
		pp, err := freePort("127.0.0.1")
		if err != nil {
			return nil, err
		}
		addrs[i] = urls{"http://127.0.0.1:" + itoa(cp), "http://127.0.0.1:" + itoa(pp)}
	}
	initial := make([]string, n)
	for i, a := range addrs {
		initial[i] = etcdName(i, n) + "=" + a.peer
	}
	members := make([]*EtcdMember, n)
	for i, a := range addrs {
		name := etcdName(i, n)
		dataDir := filepath.Join(dir, name+"-data")
		argv := []string{
			filepath.Join(binDir, "etcd"),
			"--name=" + name,
			"--data-dir=" + dataDir,
			"--listen-client-urls=" + a.client,
			"--advertise-client-urls=" + a.client,
			"--listen-peer-urls=" + a.peer,
			"--initial-advertise-peer-urls=" + a.peer,
			"--initial-cluster=" + strings.Join(initial, ","),
			"--log-level=warn",
			// A throwaway test store: durability across power loss is not needed.
			"--unsafe-no-fsync",
		}
		if host != nil {
			argv = host.Wrap(argv)
		}
		members[i] = &EtcdMember{Name: name, ClientURL: a.client, argv: argv, logPath: filepath.Join(dir, name+".log")}
	}
	return members, nil
}

// etcdName keeps a single member's name (and so its data directory) as
// it always was.
func etcdName(i, n int) string {
	if n == 1 {
		return "etcd"
	}
	return "etcd-" + itoa(i)
}

func (m *EtcdMember) start() error {
	p, err := startProcess(m.Name, m.logPath, "", nil, m.argv)
	if err != nil {
		return err
	}
	m.Process = p
	return nil
}

// Restart starts a member that was stopped or killed again, with its data.
func (e *Etcd) Restart(ctx context.Context, m *EtcdMember) error {
	if !m.Exited() {
		return fmt.Errorf("%s (pid %d) is still running", m.Name, m.PID())
	}
	if err := m.start(); err != nil {
		return err
	}
	return e.WaitHealthy(ctx, m, time.Minute)
}

// WaitHealthy polls m's /health until it says healthy.
func (e *Etcd) WaitHealthy(ctx context.Context, m *EtcdMember, timeout time.Duration) error {
	return poll(ctx, 100*time.Millisecond, timeout, func() (bool, error) {
		if m.Exited() {
			return false, fmt.Errorf("%s exited: %v (see %s)", m.Name, m.ExitError(), m.logPath)
		}
		resp, err := e.client.Get(m.ClientURL + "/health")
		if err != nil {
			return false, err
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp.StatusCode == http.StatusOK && strings.Contains(string(body), `"health":"true"`), fmt.Errorf("%s health: %s", m.Name, body)
	})
}

// Leader is the member the running members name as their leader.
func (e *Etcd) Leader(ctx context.Context) (*EtcdMember, error) {
	ids := map[string]*EtcdMember{}
	var leader string
	for _, m := range e.Members {
		if m.Exited() {
			continue
		}
		var st struct {
			Header struct {
				MemberID string `json:"member_id"`
			} `json:"header"`
			Leader string `json:"leader"`
		}
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, m.ClientURL+"/v3/maintenance/status", strings.NewReader("{}"))
		if err != nil {
			return nil, err
		}
		resp, err := e.client.Do(req)
		if err != nil {
			return nil, fmt.Errorf("%s status: %w", m.Name, err)
		}
		err = json.NewDecoder(resp.Body).Decode(&st)
		resp.Body.Close()
		if err != nil {
			return nil, fmt.Errorf("%s status: %w", m.Name, err)
		}
		ids[st.Header.MemberID] = m
		leader = st.Leader
	}
	if m, ok := ids[leader]; ok && leader != "" {
		return m, nil
	}
	return nil, fmt.Errorf("no running member is the leader %q", leader)
}

// Stop stops every running member.
func (e *Etcd) Stop(timeout time.Duration) error {
	var errs []error
	for _, m := range e.Members {
		if m.Process != nil {
			if err := m.Stop(timeout); err != nil {
				errs = append(errs, err)
			}
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("stopping etcd: %v", errs)
	}
	return nil
}
