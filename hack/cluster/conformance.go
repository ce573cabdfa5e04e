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
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// The conformance step (make cluster-conformance) runs upstream's own e2e
// suite while the cluster is mixed: the first control-plane node runs our
// server, the others still the previous release's vanilla one. The suite
// talks to one of those vanilla servers, so every request it makes for a
// resource only ours serves is one the vanilla server must answer.

// conformanceFocus is the suite's Job and Deployment conformance tests.
const conformanceFocus = `\[sig-apps\] (Job|Deployment) .*\[Conformance\]`

// e2eRegistry is where the suite's images live on the nodes: its
// promoterE2eRegistry, set by KUBE_TEST_REPO_LIST.
const e2eRegistry = registry + "/e2e-test-images"

// conformanceTest is one test of the suite and how it ended.
type conformanceTest struct {
	Name    string  `json:"name"`
	State   string  `json:"state"` // passed, failed, skipped, ...
	Seconds float64 `json:"seconds"`
	Failure string  `json:"failure,omitempty"` // the suite's own message, first line
}

// conformance imports the suite's images on every node and runs the suite
// through the second control-plane node's server. A failed test is
// reported, not an error of the step: the step fails only when the suite
// could not run or reported nothing.
func (u *upgrader) conformance(ctx context.Context) error {
	cps := u.p.controlPlanes()
	if len(cps) < 2 {
		return fmt.Errorf("-conformance needs a second control-plane node, still at %s, to run through", u.from)
	}
	through := cps[1]
	ps, err := loadParts(u.p.Parts)
	if err != nil {
		return err
	}
	suite, err := ps.file("e2e/"+u.to, "e2e.test")
	if err != nil {
		return fmt.Errorf("%w: run make cluster-conformance, which builds it", err)
	}
	if err := u.r.step("cluster", "e2e images on every node", func(log *os.File) error {
		return u.importE2EImages(ctx, log, ps)
	}); err != nil {
		return err
	}
	u.load.enter(through.Name + ": e2e conformance through " + u.from)
	return u.r.step(through.Name, "e2e.test "+conformanceFocus+" through "+u.from, func(log *os.File) error {
		tests, err := u.runSuite(ctx, log, suite, through)
		for _, t := range tests { // the rest of the suite, not focused, is only counted
			if t.State == "skipped" {
				u.res.ConformanceSkipped++
			} else {
				u.res.Conformance = append(u.res.Conformance, t)
			}
		}
		return err
	})
}

// importE2EImages builds the suite's images and imports them on every node.
func (u *upgrader) importE2EImages(ctx context.Context, log *os.File, ps parts) error {
	var files []string
	for _, img := range e2eImages(ps, u.to) {
		if img.err != nil {
			return img.err
		}
		file, err := buildImage(ctx, log, u.p, img.refs[0], img.args)
		if err != nil {
			return err
		}
		files = append(files, file)
	}
	for _, n := range u.p.Nodes {
		if err := importImages(ctx, log, u.s, n, files); err != nil {
			return fmt.Errorf("%s: %w", n.Name, err)
		}
	}
	return nil
}

// e2eImage is one image the suite runs, with nodeimage's arguments.
type e2eImage struct {
	refs []string
	args []string
	err  error
}

// e2eImages are the suite's images at the names it expects under
// e2eRegistry: busybox from Debian's static busybox, agnhost built from
// the kubernetes module's test/images/agnhost with busybox beside it, as
// upstream's image carries a shell. The suite asks for two agnhost
// releases (its current and its previous); both names point at the one
// agnhost of the pinned module. pause is the nodes' own.
func e2eImages(ps parts, version string) []e2eImage {
	busybox, err := busyboxFiles()
	if err != nil {
		return []e2eImage{{err: err}}
	}
	agnhost, err := ps.file("e2e/"+version, "agnhost")
	if err != nil {
		return []e2eImage{{err: err}}
	}
	bbRef := e2eRegistry + "/busybox:1.37.0-2"
	bb := append(append([]string{"-ref", bbRef}, busybox...), "-entrypoint", "/bin/sh")
	agRefs := []string{e2eRegistry + "/agnhost:2.66.1", e2eRegistry + "/agnhost:2.55"}
	ag := []string{"-ref", agRefs[0], "-ref", agRefs[1], "-add", agnhost + ":/agnhost", "-dir", "/uploads"}
	ag = append(append(ag, busybox...), "-entrypoint", "/agnhost", "-cmd", "pause")
	return []e2eImage{{refs: []string{bbRef}, args: bb}, {refs: agRefs, args: ag}}
}

// runSuite runs e2e.test through one node's server from the clients'
// network and reads back its report.
func (u *upgrader) runSuite(ctx context.Context, log *os.File, suite string, through node) ([]conformanceTest, error) {
	dir := filepath.Join(u.p.Out, "conformance")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	kubeconfig := filepath.Join(dir, "kubeconfig-"+through.Name)
	if err := serverKubeconfig(u.p.adminConf(), kubeconfig, "https://"+through.endpoint()); err != nil {
		return nil, err
	}
	repos := filepath.Join(dir, "repo-list.yaml")
	list := fmt.Sprintf("promoterE2eRegistry: %s\ngcRegistry: %s\n", e2eRegistry, registry)
	if err := os.WriteFile(repos, []byte(list), 0o644); err != nil {
		return nil, err
	}
	report := filepath.Join(dir, "report.json")
	_ = os.Remove(report)
	args := []string{"--net=/run/netns/" + clientNS, "env", "KUBE_TEST_REPO_LIST=" + repos, suite,
		"--kubeconfig=" + kubeconfig, "--provider=skeleton", "--ginkgo.focus=" + conformanceFocus,
		"--ginkgo.no-color", "--ginkgo.v", "--ginkgo.timeout=50m", "--ginkgo.json-report=" + report}
	runErr := run(ctx, log, "nsenter", args...)
	tests, err := readSuiteReport(report)
	if err != nil {
		return nil, fmt.Errorf("%w (the suite: %v)", err, runErr)
	}
	printConformance(os.Stdout, tests)
	return tests, nil
}

// serverKubeconfig copies a kubeconfig with its server replaced.
func serverKubeconfig(from, to, server string) error {
	b, err := os.ReadFile(from)
	if err != nil {
		return err
	}
	var out []string
	replaced := 0
	for _, line := range strings.Split(string(b), "\n") {
		if k, _, ok := strings.Cut(strings.TrimSpace(line), "server:"); ok && k == "" {
			line = line[:strings.Index(line, "server:")] + "server: " + server
			replaced++
		}
		out = append(out, line)
	}
	if replaced != 1 {
		return fmt.Errorf("%s: %d server lines, want 1", from, replaced)
	}
	return os.WriteFile(to, []byte(strings.Join(out, "\n")), 0o600)
}

// suiteReport is the part of ginkgo's JSON report read here.
type suiteReport struct {
	SpecReports []struct {
		ContainerHierarchyTexts []string
		LeafNodeText            string
		LeafNodeType            string
		State                   string
		RunTime                 time.Duration
		Failure                 struct{ Message string }
	}
}

// readSuiteReport is every test (It) of the report, in the order it ran.
func readSuiteReport(path string) ([]conformanceTest, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("no report from the suite: %w", err)
	}
	var reports []suiteReport
	if err := json.Unmarshal(b, &reports); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	var tests []conformanceTest
	for _, r := range reports {
		for _, s := range r.SpecReports {
			if s.LeafNodeType != "It" {
				continue
			}
			msg, _, _ := strings.Cut(strings.TrimSpace(s.Failure.Message), "\n")
			tests = append(tests, conformanceTest{
				Name:  strings.Join(append(s.ContainerHierarchyTexts, s.LeafNodeText), " "),
				State: s.State, Seconds: s.RunTime.Seconds(), Failure: msg,
			})
		}
	}
	if len(tests) == 0 {
		return nil, fmt.Errorf("%s: no test ran", path)
	}
	return tests, nil
}

// printConformance is one line per test that ran, then the counts.
func printConformance(w io.Writer, tests []conformanceTest) {
	counts := map[string]int{}
	for _, t := range tests {
		counts[t.State]++
		if t.State == "skipped" {
			continue
		}
		line := fmt.Sprintf("  %-7s %6.1fs  %s", t.State, t.Seconds, t.Name)
		if t.Failure != "" {
			line += "\n           why: " + t.Failure
		}
		fmt.Fprintln(w, line)
	}
	fmt.Fprintf(w, "  e2e conformance: %d passed, %d failed, %d skipped\n", counts["passed"], counts["failed"], counts["skipped"])
}
