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
	"fmt"
	"io"
	"os"
)

// upgradeResult is what make cluster-upgrade measured, as upgrade.json
// keeps it for make test-cluster.
type upgradeResult struct {
	From       string          `json:"from"`
	To         string          `json:"to"`
	Phases     []*phaseResult  `json:"phases"`
	StaticPods []staticPod     `json:"staticPods"`
	WebReady   int             `json:"webReadyReplicas"`
	Discovery  map[string]bool `json:"storagemigrationInDiscovery"`
	Steps      []timing        `json:"steps"`
	// Conformance is upstream's e2e tests run while the cluster was
	// mixed, when asked for.
	Conformance        []conformanceTest `json:"conformance,omitempty"`
	ConformanceSkipped int               `json:"conformanceSkipped,omitempty"`
}

// staticPod is one kube-apiserver static Pod replaced, and how long from
// its manifest's change until it was Ready.
type staticPod struct {
	Node         string  `json:"node"`
	Image        string  `json:"image"`
	ReadySeconds float64 `json:"readySeconds"`
}

func (r *upgradeResult) write(path string) error {
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, append(b, '\n'), 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// sum is a phase's tallies over every target, with the target of its
// longest time without an answer.
func (ph *phaseResult) sum() (all tally, gapAt string) {
	for _, name := range sortedKeys(ph.Targets) {
		t := ph.Targets[name]
		all.Requests += t.Requests
		all.FalseNotFound += t.FalseNotFound
		all.Unavailable += t.Unavailable
		all.RetryAfter += t.RetryAfter
		all.Other += t.Other
		if t.LongestGap > all.LongestGap {
			all.LongestGap, gapAt = t.LongestGap, name
		}
	}
	return all, gapAt
}

// print writes one summary line per phase, then each target's figures
// where they are not all answers.
func (r *upgradeResult) print(w io.Writer) {
	fmt.Fprintf(w, "\nupgrade %s -> %s under load (load balancer and each control-plane server):\n", r.From, r.To)
	for _, ph := range r.Phases {
		all, at := ph.sum()
		fmt.Fprintf(w, "  %-52s %6.1fs  %5d requests, %d false 404, %d × 503 (%d with Retry-After), %d other errors, longest without an answer %.1fs (%s)\n",
			ph.Name, ph.Seconds, all.Requests, all.FalseNotFound, all.Unavailable, all.RetryAfter, all.Other, all.LongestGap, at)
		for _, name := range sortedKeys(ph.Targets) {
			t := ph.Targets[name]
			if t.FalseNotFound+t.Unavailable+t.Other == 0 {
				continue
			}
			fmt.Fprintf(w, "      %-4s %d requests, %d false 404, %d × 503, %d other; first: %v\n", name, t.Requests, t.FalseNotFound, t.Unavailable, t.Other, t.Samples)
			for _, nf := range t.NotFound {
				fmt.Fprintf(w, "      %-4s false 404: %s\n", name, nf)
			}
		}
	}
	for _, sp := range r.StaticPods {
		fmt.Fprintf(w, "  static Pod %s on %s Ready %.1fs after its manifest changed\n", sp.Image, sp.Node, sp.ReadySeconds)
	}
	fmt.Fprintf(w, "  Deployment web: %d ready; storagemigration.k8s.io/v1 in discovery: %v\n", r.WebReady, r.Discovery)
	if len(r.Conformance) > 0 {
		printConformance(w, r.Conformance)
		fmt.Fprintf(w, "  (%d tests of the suite not focused)\n", r.ConformanceSkipped)
	}
}
