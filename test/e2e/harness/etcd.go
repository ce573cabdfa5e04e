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
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"time"
)

// Etcd is a single-member etcd built from the pinned module.
type Etcd struct {
	*Process
	URL     string
	DataDir string
}

// StartEtcd starts etcd on loopback with its data under dir and waits until
// it reports healthy.
func StartEtcd(ctx context.Context, binDir, dir string) (*Etcd, error) {
	clientPort, err := freePort("127.0.0.1")
	if err != nil {
		return nil, err
	}
	peerPort, err := freePort("127.0.0.1")
	if err != nil {
		return nil, err
	}
	clientURL := "http://127.0.0.1:" + itoa(clientPort)
	peerURL := "http://127.0.0.1:" + itoa(peerPort)
	dataDir := filepath.Join(dir, "etcd-data")
	argv := []string{
		filepath.Join(binDir, "etcd"),
		"--name=mvp",
		"--data-dir=" + dataDir,
		"--listen-client-urls=" + clientURL,
		"--advertise-client-urls=" + clientURL,
		"--listen-peer-urls=" + peerURL,
		"--initial-advertise-peer-urls=" + peerURL,
		"--initial-cluster=mvp=" + peerURL,
		"--log-level=warn",
		// A throwaway test store: durability across power loss is not needed.
		"--unsafe-no-fsync",
	}
	p, err := startProcess("etcd", filepath.Join(dir, "etcd.log"), "", nil, argv)
	if err != nil {
		return nil, err
	}
	e := &Etcd{Process: p, URL: clientURL, DataDir: dataDir}
	err = poll(ctx, 100*time.Millisecond, 60*time.Second, func() (bool, error) {
		if p.Exited() {
			return false, fmt.Errorf("etcd exited: %v (see %s)", p.ExitError(), p.LogPath)
		}
		resp, err := http.Get(clientURL + "/health")
		if err != nil {
			return false, err
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp.StatusCode == http.StatusOK && strings.Contains(string(body), `"health":"true"`), fmt.Errorf("etcd health: %s", body)
	})
	if err != nil {
		p.Kill()
		return nil, err
	}
	return e, nil
}
