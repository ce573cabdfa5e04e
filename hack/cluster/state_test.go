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
