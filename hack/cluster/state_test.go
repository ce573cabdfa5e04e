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
	"strings"
	"testing"
	"time"
)

// A second lock while one is held fails naming the holder; once released,
// the file names nobody and the lock can be taken again.
func TestLockNamesHolderOnlyWhileHeld(t *testing.T) {
	dir := t.TempDir()
	release, err := lock(dir)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := lock(dir); err == nil || !strings.Contains(err.Error(), "pid") {
		t.Fatalf("second lock: err %v, want the holder's pid named", err)
	}
	release()
	b, err := os.ReadFile(filepath.Join(dir, "lock"))
	if err != nil {
		t.Fatal(err)
	}
	if len(b) != 0 {
		t.Errorf("lock file after release: %q, want empty", b)
	}
	again, err := lock(dir)
	if err != nil {
		t.Fatalf("lock after release: %v", err)
	}
	again()
}

func TestPlanRefusesNoWorkers(t *testing.T) {
	dir := t.TempDir()
	if _, err := absPlan(dir, dir, dir, dir, 1, 0); err == nil || !strings.Contains(err.Error(), "-workers 0") {
		t.Errorf("0 workers: err %v, want -workers named", err)
	}
	if _, err := absPlan(dir, dir, dir, dir, 0, 1); err == nil || !strings.Contains(err.Error(), "-control-planes 0") {
		t.Errorf("0 control planes: err %v, want -control-planes named", err)
	}
}

// A manifest moved into place keeps its modification time, as kubeadm's
// are: the time it changed in place is the move's, not the rendering's.
func TestManifestChangedAtIsTheMove(t *testing.T) {
	dir := t.TempDir()
	rendered, placed := filepath.Join(dir, "rendered.yaml"), filepath.Join(dir, "kube-apiserver.yaml")
	if err := os.WriteFile(rendered, []byte("kind: Pod\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	old := time.Now().Add(-3 * time.Minute)
	if err := os.Chtimes(rendered, old, old); err != nil {
		t.Fatal(err)
	}
	moved := time.Now()
	if err := os.Rename(rendered, placed); err != nil {
		t.Fatal(err)
	}
	got, err := manifestChangedAt(placed)
	if err != nil {
		t.Fatal(err)
	}
	if got.Before(moved.Add(-time.Second)) {
		t.Errorf("changed at %v, want the move at %v, not the rendering at %v", got, moved, old)
	}
	if _, err := manifestChangedAt(filepath.Join(dir, "missing.yaml")); err == nil || !strings.Contains(err.Error(), "missing.yaml") {
		t.Errorf("a missing manifest: %v", err)
	}
}
