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
	"path/filepath"
	"strings"
	"time"
)

// upgrade follows docs/upgrade.md on the cluster make cluster made: our
// image published on every control-plane node and each node's patch
// rendered by hack/kubeadm/render.sh; kubeadm of the new release
// installed; `kubeadm upgrade apply` on the first control-plane node,
// `kubeadm upgrade node` on the others; each node's kubelet upgraded with
// drain and uncordon; then one control-plane node rolled back from
// kubeadm's manifest backup and forward again. Client load runs
// throughout; the result is written to upgrade.json.
func upgrade(ctx context.Context, p plan, to string) error {
	release, err := lock(p.Out)
	if err != nil {
		return err
	}
	defer release()
	s, err := loadState(p.statePath())
	if err != nil {
		return err
	}
	if s.empty() || s.Version == "" {
		return fmt.Errorf("no cluster is up (%s): run make cluster first", p.statePath())
	}
	u := &upgrader{p: p, s: s, from: s.Version, to: to, r: &runner{logDir: p.logDir(), started: time.Now()}}
	u.res.From, u.res.To = u.from, to
	if err := u.prepare(ctx); err != nil {
		return err
	}
	logsCtx, stopLogs := context.WithCancel(ctx)
	defer keepPodLogs(logsCtx, p)()
	defer stopLogs()
	if err := u.startLoad(ctx); err != nil {
		return err
	}
	err = u.rollout(ctx)
	u.res.Phases = u.load.finish()
	u.stopLoad()
	if err == nil {
		err = u.check(ctx)
	}
	u.res.Steps = u.r.timings
	if werr := u.res.write(filepath.Join(p.Out, "upgrade.json")); werr != nil && err == nil {
		err = werr
	}
	u.res.print(os.Stdout)
	if err != nil {
		return err
	}
	s.Version = to
	return s.save()
}

// upgrader is one run of the upgrade.
type upgrader struct {
	p        plan
	s        *state
	from, to string
	r        *runner
	load     *load
	stopLoad func()
	res      upgradeResult
}

// prepare: the new release's images on every node and ours on each
// control-plane node (published, as the runbook's "before you start"
// says), each control-plane node's patch rendered, kubeadm of the new
// release installed on every node.
func (u *upgrader) prepare(ctx context.Context) error {
	files, err := upImages(ctx, u.r, u.p, u.to)
	if err != nil {
		return err
	}
	ps, err := loadParts(u.p.Parts)
	if err != nil {
		return err
	}
	for _, n := range u.p.Nodes {
		if err := u.r.step(n.Name, "import images of "+u.to, func(log *os.File) error {
			if err := importImages(ctx, log, u.s, n, files); err != nil {
				return err
			}
			if !n.ControlPlane {
				return nil
			}
			if err := importOurs(ctx, log, u.p, u.s, n, u.to); err != nil {
				return err
			}
			if u.p.Faults.on("image-missing", n) {
				if err := inNode(ctx, log, u.s, n, "ctr", "-n", "k8s.io", "images", "rm", oursRef(u.to)); err != nil {
					return err
				}
			}
			return renderPatch(ctx, log, u.p, n, u.to)
		}); err != nil {
			return err
		}
		if err := u.r.step(n.Name, "images of "+u.to+" present", func(log *os.File) error {
			refs, err := releaseImages(ctx, ps, u.to)
			if err != nil {
				return err
			}
			if n.ControlPlane {
				refs = append(refs, oursRef(u.to))
			}
			return imagesPresent(ctx, u.s, n, append(refs, busyboxRef))
		}); err != nil {
			return err
		}
		if err := u.r.step(n.Name, "install kubeadm "+u.to, func(log *os.File) error {
			return installRelease(ps, filepath.Join(u.p.nodeDir(n), "bin"), "kubeadm", u.to)
		}); err != nil {
			return err
		}
	}
	return nil
}

// renderPatch runs hack/kubeadm/render.sh for a control-plane node, as
// docs/kubeadm.md does: our image, and the node's peer address.
func renderPatch(ctx context.Context, log *os.File, p plan, n node, version string) error {
	script, err := filepath.Abs(filepath.Join("hack", "kubeadm", "render.sh"))
	if err != nil {
		return err
	}
	out := filepath.Join(p.nodeDir(n), "fs", "etc-kubernetes", "mvp")
	env := []string{"NODE_IP=" + n.PeerIP, fmt.Sprintf("NODE_PORT=%d", apiPort), "MVP_IMAGE=" + oursRef(version),
		"CONTROL_PLANE_ENDPOINT=" + fmt.Sprintf("%s:%d", lbIP, apiPort), "KUBERNETES_VERSION=" + version}
	return run(ctx, log, "env", append(env, script, out)...)
}

// startLoad makes the load's namespace and objects and starts it: through
// the load balancer and every control-plane node's server.
func (u *upgrader) startLoad(ctx context.Context) error {
	targets := []target{{Name: "lb", URL: u.p.lbURL()}}
	for _, n := range u.p.controlPlanes() {
		targets = append(targets, target{Name: n.Name, URL: "https://" + n.endpoint()})
	}
	if err := u.r.step("cluster", "load: namespace and objects", func(log *os.File) error {
		return applyObjects(ctx, log, u.p, loadObjects(targets))
	}); err != nil {
		return err
	}
	l, err := newLoad(u.p, targets)
	if err != nil {
		return err
	}
	u.load = l
	l.enter("all " + u.from)
	loadCtx, cancel := context.WithCancel(ctx)
	wait := l.start(loadCtx)
	u.stopLoad = func() { cancel(); wait() }
	pause(ctx, 5*time.Second) // observed under load before anything changes
	return nil
}

// loadObjects is the namespace and one ConfigMap per target the load reads.
func loadObjects(targets []target) string {
	var b strings.Builder
	fmt.Fprintf(&b, "apiVersion: v1\nkind: Namespace\nmetadata: {name: %s}\n", loadNamespace)
	for _, t := range targets {
		fmt.Fprintf(&b, "---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: target-%s, namespace: %s}\ndata: {target: %s}\n", t.Name, loadNamespace, t.Name)
	}
	return b.String()
}

// applyObjects writes manifests to a file and applies them as the admin.
func applyObjects(ctx context.Context, log *os.File, p plan, manifests string) error {
	f, err := os.CreateTemp(p.Out, "apply-*.yaml")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name())
	if _, err := f.WriteString(manifests); err != nil {
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return kubectl(ctx, log, p, "apply", "-f", f.Name())
}
