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
	"fmt"
	"os"
	"strings"
	"time"
)

// faults are the failures make test-cluster injects (-fault
// kind:node,...), each to show that the harness names the node and the
// step, and that cleanup still works:
//
//	join-fails:<node>    the node joins with a CA pin that is not the cluster's
//	image-missing:<node> our image is removed from the node after the import
//	kill-kubelet:<node>  the node's kubelet is killed while kubeadm upgrades it
type faults map[string]string // kind -> node

var faultKinds = []string{"join-fails", "image-missing", "kill-kubelet"}

func parseFaults(spec string, p plan) (faults, error) {
	f := faults{}
	if spec == "" {
		return f, nil
	}
	for _, item := range strings.Split(spec, ",") {
		kind, name, ok := strings.Cut(item, ":")
		known := false
		for _, k := range faultKinds {
			known = known || k == kind
		}
		if !ok || !known {
			return nil, fmt.Errorf("-fault %q: want kind:node with kind one of %s", item, strings.Join(faultKinds, ", "))
		}
		if _, err := p.node(name); err != nil {
			return nil, fmt.Errorf("-fault %q: %w", item, err)
		}
		f[kind] = name
	}
	return f, nil
}

func (f faults) on(kind string, n node) bool { return f[kind] == n.Name }

// killKubeletSoon kills a node's kubelet a few seconds into a step, as a
// crash would; the returned func waits for it and reports what happened.
func killKubeletSoon(ctx context.Context, log *os.File, s *state, n node) (wait func()) {
	done := make(chan struct{})
	go func() {
		defer close(done)
		pause(ctx, 3*time.Second)
		text, err := askAgent(s, n, "kill", "kubelet")
		fmt.Fprintf(log, "%s fault: kill kubelet on %s: %s %v\n", time.Now().Format("15:04:05.000"), n.Name, text, err)
	}()
	return func() { <-done }
}

// imagesPresent checks that every image the node needs for a release is
// in its containerd, naming the ones that are not.
func imagesPresent(ctx context.Context, s *state, n node, refs []string) error {
	pid, err := agentPid(s, n)
	if err != nil {
		return err
	}
	out, err := output(ctx, "nsenter", nodeEnter(pid, "ctr", "-n", "k8s.io", "images", "list", "-q")...)
	if err != nil {
		return err
	}
	have := map[string]bool{}
	for _, ref := range strings.Fields(out) {
		have[ref] = true
	}
	var missing []string
	for _, ref := range refs {
		if !have[ref] {
			missing = append(missing, ref)
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("not in the node's containerd: %s (import them: ctr -n k8s.io images import)", strings.Join(missing, ", "))
	}
	return nil
}
