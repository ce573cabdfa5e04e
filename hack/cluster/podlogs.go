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
	"io/fs"
	"os"
	"path/filepath"
	"time"
)

// keepPodLogs keeps every container log the nodes' kubelets write under
// logs/pods/<node>, until ctx ends: each new file is hard-linked there, so
// the log of a static Pod that kubeadm replaced outlives the kubelet's
// removal of its folder, and what a server said while it was replaced
// can be read after the run.
func keepPodLogs(ctx context.Context, p plan) (wait func()) {
	done := make(chan struct{})
	go func() {
		defer close(done)
		tick := time.NewTicker(2 * time.Second)
		defer tick.Stop()
		for {
			for _, n := range p.Nodes {
				linkPodLogs(filepath.Join(p.nodeDir(n), "fs", "var-log", "pods"), filepath.Join(p.logDir(), "pods", n.Name))
			}
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
		}
	}()
	return func() { <-done }
}

// linkPodLogs hard-links each file under from that is not yet under to.
func linkPodLogs(from, to string) {
	_ = filepath.WalkDir(from, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return nil
		}
		rel, err := filepath.Rel(from, path)
		if err != nil {
			return nil
		}
		dst := filepath.Join(to, rel)
		if _, err := os.Lstat(dst); err == nil {
			return nil
		}
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err == nil {
			_ = os.Link(path, dst)
		}
		return nil
	})
}
