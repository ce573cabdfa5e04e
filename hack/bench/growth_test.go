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
	"bytes"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func TestSizeList(t *testing.T) {
	if got, err := sizeList("-x", "3, 5,7", 2, 9); err != nil || !slices.Equal(got, []int{3, 5, 7}) {
		t.Errorf("sizeList(3, 5,7) = %v, %v", got, err)
	}
	for _, bad := range []string{"", "3,x", "1,3", "3,10", "5,3", "3,3"} {
		if got, err := sizeList("-growth-servers", bad, 2, 9); err == nil || !strings.Contains(err.Error(), "-growth-servers") {
			t.Errorf("sizeList(%q) = %v, %v; want an error naming the flag", bad, got, err)
		}
	}
}

func TestSocketBytesSince(t *testing.T) {
	then := socketBytes{1: 100, 2: 50, 3: 10}
	now := socketBytes{1: 160, 2: 50, 4: 30} // 3 closed, 4 opened
	if got := now.since(then); got != 60+0+30 {
		t.Errorf("since = %d, want 90", got)
	}
}

func TestGrowthTargetsCheckTheLargestSize(t *testing.T) {
	rep := growthReport{
		Watches: []growthPoint[watchPoint]{
			{Size: 1000, Ours: watchPoint{HeapPerWatchKB: 99}},
			{Size: 10000, Ours: watchPoint{HeapPerWatchKB: 23, StreamGoroutinesPerWatch: 2, LagP99Ratio: 1.1, Complete: 20000, Watchers: 20000}},
		},
		Servers: []growthPoint[serverPoint]{
			{Size: 3, Ours: serverPoint{PeerBytesPerMinPerPeer: 1000, JoinProxiedS: 1}},
			{Size: 7, Ours: serverPoint{PeerBytesPerMinPerPeer: 1300, JoinProxiedS: -1, MVPIdleCPUPct: 0.2}},
		},
	}
	missed := map[string]bool{}
	for _, tg := range growthTargets(rep) {
		if !tg.met {
			missed[tg.name] = true
		}
	}
	want := map[string]bool{
		"peer traffic linear (per peer, 7 vs 3) <= 1.25": true, // 1.3
		"new server proxied to within 5 s at 7 servers":  true, // timed out
	}
	if len(missed) != len(want) {
		t.Errorf("missed %v, want %v", missed, want)
	}
	for name := range want {
		if !missed[name] {
			t.Errorf("%q met; want missed (missed: %v)", name, missed)
		}
	}
}

func TestPlotGrowthWritesOneSVGPerNamedFigure(t *testing.T) {
	prefix := filepath.Join(t.TempDir(), "g")
	rep := growthReport{CRDs: []growthPoint[crdPoint]{
		{Size: 200, Ours: crdPoint{MergedP50Ratio: 0.9}, Upstream: crdPoint{MergedP50Ratio: 1}},
		{Size: 2000, Ours: crdPoint{MergedP50Ratio: 1}, Upstream: crdPoint{MergedP50Ratio: 1.2}},
	}}
	files, err := writeGrowth(prefix, rep)
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"g-crd-merged.svg", "g-crd-visible.svg", "g-crd-removal.svg", "g-crd-memory.svg"}; !slices.Equal(files, want) {
		t.Fatalf("files %v, want %v", files, want)
	}
	svg, err := os.ReadFile(filepath.Join(filepath.Dir(prefix), files[0]))
	if err != nil || !bytes.Contains(svg, []byte("<svg")) || !bytes.Contains(svg, []byte("upstream")) {
		t.Errorf("%s is not a plot with a legend (%v): %.200s", files[0], err, svg)
	}
	if _, err := os.Stat(prefix + ".json"); err != nil {
		t.Error(err)
	}
}

// peerHelperEnv makes the test binary a peer process: it dials the
// address, sends 100,000 bytes, reads 50,000 and holds the connection
// until its stdin closes.
const peerHelperEnv = "BENCH_PEER_HELPER_ADDR"

func TestMain(m *testing.M) {
	if addr := os.Getenv(peerHelperEnv); addr != "" {
		conn, err := net.Dial("tcp", addr)
		if err == nil {
			_, err = conn.Write(make([]byte, 100000))
		}
		if err == nil {
			_, err = io.ReadFull(conn, make([]byte, 50000))
		}
		if err != nil {
			os.Exit(1)
		}
		_, _ = io.Copy(io.Discard, os.Stdin)
		os.Exit(0)
	}
	os.Exit(m.Run())
}

func TestPeerSocketBytesCountsOnlyConnectionsBetweenTheProcesses(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	child := exec.Command(self)
	child.Env = append(os.Environ(), peerHelperEnv+"="+ln.Addr().String())
	stdin, err := child.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := child.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { stdin.Close(); _ = child.Wait() }()
	conn, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := io.ReadFull(conn, make([]byte, 100000)); err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Write(make([]byte, 50000)); err != nil {
		t.Fatal(err)
	}
	// A connection of this process to itself is no peer traffic.
	own, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer own.Close()
	ownIn, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer ownIn.Close()
	if _, err := own.Write(make([]byte, 70000)); err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadFull(ownIn, make([]byte, 70000)); err != nil {
		t.Fatal(err)
	}

	got, err := peerSocketBytes([]int{os.Getpid(), child.Process.Pid})
	if err != nil {
		t.Fatal(err)
	}
	for i, b := range got {
		if total := b.since(nil); len(b) != 1 || total != 150000 {
			t.Errorf("process %d: %d peer sockets carrying %d bytes, want 1 carrying 150000 (%v)", i, len(b), total, b)
		}
	}
}
