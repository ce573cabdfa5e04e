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
