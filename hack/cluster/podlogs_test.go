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
	"os"
	"path/filepath"
	"testing"
)

// A log linked once keeps its later lines and survives its folder's removal.
func TestLinkPodLogs(t *testing.T) {
	from, to := t.TempDir(), t.TempDir()
	dir := filepath.Join(from, "kube-system_kube-apiserver-cp1_uid", "kube-apiserver")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	f, err := os.Create(filepath.Join(dir, "0.log"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	f.WriteString("first\n")
	linkPodLogs(from, to)
	f.WriteString("second\n")
	if err := os.RemoveAll(filepath.Join(from, "kube-system_kube-apiserver-cp1_uid")); err != nil {
		t.Fatal(err)
	}
	linkPodLogs(from, to)
	b, err := os.ReadFile(filepath.Join(to, "kube-system_kube-apiserver-cp1_uid", "kube-apiserver", "0.log"))
	if err != nil {
		t.Fatal(err)
	}
	if string(b) != "first\nsecond\n" {
		t.Fatalf("kept %q", b)
	}
}
