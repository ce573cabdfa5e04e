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
