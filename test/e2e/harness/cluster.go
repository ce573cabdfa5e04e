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

	mu      sync.Mutex
	servers []*Server
}

// NewCluster writes a PKI under dir and starts etcd.
func NewCluster(ctx context.Context, binDir, dir string) (*Cluster, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	p, err := NewPKI(filepath.Join(dir, "pki"))
	if err != nil {
		return nil, err
	}
	e, err := StartEtcd(ctx, binDir, dir)
	if err != nil {
		return nil, err
	}
	return &Cluster{Dir: dir, BinDir: binDir, PKI: p, Etcd: e}, nil
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
	}
}
