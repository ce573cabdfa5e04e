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

package cluster

import (
	"strings"
	"testing"
)

// The faults: each fails naming the node and the step, and cleanup works.
func TestFaultsNameNodeAndStep(t *testing.T) {
	e := newEnv(t)
	e.downClean(t)
	t.Cleanup(func() { e.downClean(t) })

	small := []string{"-control-planes", "1", "-workers", "1"}
	out, err := e.cluster(t, "up", append(small, "-fault", "join-fails:w1")...)
	if err == nil || !strings.Contains(out, "w1: kubeadm join: ") {
		t.Errorf("join-fails: err %v, want the error to name w1 and kubeadm join", err)
	}
	e.downClean(t)

	out, err = e.cluster(t, "up", "-control-planes", "1", "-workers", "0")
	if err == nil || !strings.Contains(out, "-workers 0: the cluster needs at least one worker") {
		t.Errorf("up -workers 0: err %v, want the flag named", err)
	}

	if _, err := e.cluster(t, "up", small...); err != nil {
		t.Fatalf("cluster up: %v", err)
	}
	out, err = e.cluster(t, "upgrade", append(small, "-fault", "image-missing:cp1")...)
	if err == nil || !strings.Contains(out, "cp1: images of v1.37.2 present: ") || !strings.Contains(out, "kube-apiserver:v1.37.2-mvp") {
		t.Errorf("image-missing: err %v, want the error to name cp1, the step and our image", err)
	}
}
