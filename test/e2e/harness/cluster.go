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
	"net"
	"os"
	"path/filepath"
	"sync"
	"time"

	"k8s.io/client-go/rest"
)

// Cluster is an etcd and the PKI its kube-apiservers share.
type Cluster struct {
	Dir    string
	BinDir string
	PKI    *PKI
	Etcd   *Etcd
	// Dial reaches the servers; nil is the machine's own network. A
	// cluster on a Network dials from the network's client host.
	Dial func(ctx context.Context, network, addr string) (net.Conn, error)

	mu      sync.Mutex
	servers []*Server
}

// NewCluster writes a PKI under dir and starts a one-member etcd on
// loopback.
func NewCluster(ctx context.Context, binDir, dir string) (*Cluster, error) {
	return NewClusterWith(ctx, binDir, dir, ClusterOptions{})
}

// ClusterOptions say where a cluster runs. The zero value is loopback
// with a one-member etcd.
type ClusterOptions struct {
	// Network puts etcd on a host "etcd" of the network's client network,
	// and every client of the cluster on the network's client host.
	Network *Network
	// EtcdMembers is how many etcd members (on loopback only); 1 when 0.
	EtcdMembers int
}

// NewClusterWith writes a PKI under dir and starts etcd as o says.
func NewClusterWith(ctx context.Context, binDir, dir string, o ClusterOptions) (*Cluster, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	p, err := NewPKI(filepath.Join(dir, "pki"))
	if err != nil {
		return nil, err
	}
	eo := EtcdOptions{Members: o.EtcdMembers}
	c := &Cluster{Dir: dir, BinDir: binDir, PKI: p}
	if o.Network != nil {
		if eo.Host, err = o.Network.AddHost(ctx, "etcd", ClientNet+"3", ""); err != nil {
			return nil, err
		}
		eo.Dial, c.Dial = o.Network.Dial, o.Network.Dial
	}
	if c.Etcd, err = StartEtcd(ctx, binDir, dir, eo); err != nil {
		return nil, err
	}
	return c, nil
}

// Stop stops every server the cluster started, then etcd.
func (c *Cluster) Stop() {
	c.mu.Lock()
	servers := c.servers
	c.servers = nil
	c.mu.Unlock()
	var wg sync.WaitGroup
	for _, s := range servers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_ = s.Stop(20 * time.Second)
		}()
	}
	wg.Wait()
	if c.Etcd != nil {
		_ = c.Etcd.Stop(20 * time.Second)
	}
}

func (c *Cluster) restConfig(host, certFile, keyFile string) *rest.Config {
	return &rest.Config{
		Host: host,
		TLSClientConfig: rest.TLSClientConfig{
			CAFile:   c.PKI.CAFile,
			CertFile: certFile,
			KeyFile:  keyFile,
		},
		QPS:   -1, // no client-side throttling in tests
		Burst: -1,
		Dial:  c.Dial,
	}
}
