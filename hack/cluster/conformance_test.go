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
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/onsi/ginkgo/v2/types"
)

// The report is written by ginkgo's own types, so a change of its JSON
// shows here rather than as an empty conformance table.
func TestReadSuiteReport(t *testing.T) {
	report := types.Report{SpecReports: types.SpecReports{
		{LeafNodeType: types.NodeTypeBeforeSuite, State: types.SpecStatePassed},
		{ContainerHierarchyTexts: []string{"[sig-apps] Job"}, LeafNodeText: "should run a job to completion [Conformance]",
			LeafNodeType: types.NodeTypeIt, State: types.SpecStatePassed, RunTime: 12500 * time.Millisecond},
		{ContainerHierarchyTexts: []string{"[sig-apps] Deployment"}, LeafNodeText: "should proportionally scale [Conformance]",
			LeafNodeType: types.NodeTypeIt, State: types.SpecStateFailed, RunTime: time.Minute,
			Failure: types.Failure{Message: "timed out waiting for replicas\nmore detail"}},
		{ContainerHierarchyTexts: []string{"[sig-apps] Job"}, LeafNodeText: "not focused",
			LeafNodeType: types.NodeTypeIt, State: types.SpecStateSkipped},
	}}
	b, err := json.Marshal([]types.Report{report})
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "report.json")
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
	tests, err := readSuiteReport(path)
	if err != nil {
		t.Fatal(err)
	}
	want := []conformanceTest{
		{Name: "[sig-apps] Job should run a job to completion [Conformance]", State: "passed", Seconds: 12.5},
		{Name: "[sig-apps] Deployment should proportionally scale [Conformance]", State: "failed", Seconds: 60, Failure: "timed out waiting for replicas"},
		{Name: "[sig-apps] Job not focused", State: "skipped"},
	}
	if len(tests) != len(want) {
		t.Fatalf("got %d tests %+v, want %d", len(tests), tests, len(want))
	}
	for i := range want {
		if tests[i] != want[i] {
			t.Errorf("test %d: got %+v, want %+v", i, tests[i], want[i])
		}
	}
	var out strings.Builder
	printConformance(&out, tests)
	if !strings.Contains(out.String(), "1 passed, 1 failed, 1 skipped") || strings.Contains(out.String(), "not focused") {
		t.Errorf("summary:\n%s", out.String())
	}
}

func TestReadSuiteReportEmpty(t *testing.T) {
	path := filepath.Join(t.TempDir(), "report.json")
	if err := os.WriteFile(path, []byte(`[{"SpecReports":[]}]`), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := readSuiteReport(path); err == nil || !strings.Contains(err.Error(), "no test ran") {
		t.Fatalf("err = %v, want no test ran", err)
	}
	if _, err := readSuiteReport(filepath.Join(t.TempDir(), "missing.json")); err == nil {
		t.Fatal("a missing report read as a result")
	}
}

func TestServerKubeconfig(t *testing.T) {
	dir := t.TempDir()
	from := filepath.Join(dir, "admin.conf")
	conf := "apiVersion: v1\nclusters:\n- cluster:\n    certificate-authority-data: AAA\n    server: https://198.19.0.2:6443\n  name: mvp\n"
	if err := os.WriteFile(from, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	to := filepath.Join(dir, "cp2.conf")
	if err := serverKubeconfig(from, to, "https://198.19.0.12:6443"); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(to)
	if want := strings.Replace(conf, "198.19.0.2", "198.19.0.12", 1); string(b) != want {
		t.Fatalf("got\n%s\nwant\n%s", b, want)
	}
	if err := os.WriteFile(from, []byte("clusters: []\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := serverKubeconfig(from, to, "https://x"); err == nil {
		t.Fatal("a kubeconfig without a server was accepted")
	}
}
