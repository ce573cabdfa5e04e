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
	"sort"
	"strings"
	"time"
)

// rollout is the runbook's order, one phase of the load per step.
func (u *upgrader) rollout(ctx context.Context) error {
	cps := u.p.controlPlanes()
	if err := u.upgradeControlPlane(ctx, cps[0], "upgrade", "apply", u.to, "--yes", "--patches", patchesDir, ignorePreflight); err != nil {
		return err
	}
	if err := u.migrationAvailable(ctx); err != nil {
		return err
	}
	if err := u.r.step("cluster", "scale Deployment web to 3", func(log *os.File) error {
		return kubectl(ctx, log, u.p, "scale", "deployment/web", "--replicas=3")
	}); err != nil {
		return err
	}
	if u.p.Conformance {
		if err := u.conformance(ctx); err != nil {
			return err
		}
	}
	for _, n := range cps[1:] {
		if err := u.upgradeControlPlane(ctx, n, "upgrade", "node", "--patches", patchesDir, ignorePreflight); err != nil {
			return err
		}
	}
	for _, n := range u.p.Nodes {
		if err := u.upgradeKubelet(ctx, n); err != nil {
			return err
		}
	}
	last := cps[len(cps)-1]
	if err := u.rollback(ctx, last); err != nil {
		return err
	}
	u.load.enter("all upgraded, after")
	pause(ctx, 5*time.Second)
	return nil
}

// upgradeControlPlane runs kubeadm on a control-plane node and waits until
// its own server is ours and its static Pod Ready, recording how long
// that took from the manifest kubeadm wrote.
func (u *upgrader) upgradeControlPlane(ctx context.Context, n node, kubeadmArgs ...string) error {
	name := "kubeadm " + kubeadmArgs[0] + " " + kubeadmArgs[1]
	u.load.enter(n.Name + ": " + name)
	if err := u.r.step(n.Name, name, func(log *os.File) error {
		if u.p.Faults.on("kill-kubelet", n) {
			defer killKubeletSoon(ctx, log, u.s, n)()
		}
		return inNode(ctx, log, u.s, n, append([]string{"kubeadm"}, kubeadmArgs...)...)
	}); err != nil {
		return err
	}
	return u.r.step(n.Name, "our kube-apiserver Ready", func(log *os.File) error {
		return u.waitStaticPod(ctx, log, n, true)
	})
}

// migrationAvailable waits until every target serves
// storagemigration.k8s.io/v1 (the upgraded node itself, the others by
// proxying), then creates the StorageVersionMigration the load reads.
func (u *upgrader) migrationAvailable(ctx context.Context) error {
	return u.r.step("cluster", "storagemigration.k8s.io/v1 through every server, a migration created", func(log *os.File) error {
		for _, t := range u.load.targets {
			if err := waitFor(ctx, 90*time.Second, "storagemigration.k8s.io/v1 through "+t.Name, func() (bool, error) {
				code, _, err := u.load.get(ctx, t.URL+"/apis/storagemigration.k8s.io/v1/storageversionmigrations")
				fmt.Fprintf(log, "%s %s: %d %v\n", time.Now().Format("15:04:05.000"), t.Name, code, err)
				return code == 200, nil
			}); err != nil {
				return err
			}
		}
		manifest := fmt.Sprintf("apiVersion: storagemigration.k8s.io/v1\nkind: StorageVersionMigration\nmetadata: {name: %s}\nspec:\n  resource: {group: \"\", resource: configmaps}\n", loadMigration)
		if err := applyObjects(ctx, log, u.p, manifest); err != nil {
			return err
		}
		u.load.svmOn.Store(true)
		return nil
	})
}

// upgradeKubelet is the runbook's kubelet step of one node: drain, on a
// worker `kubeadm upgrade node`, the new kubelet installed and restarted,
// the node Ready at the new release, uncordon.
func (u *upgrader) upgradeKubelet(ctx context.Context, n node) error {
	u.load.enter(n.Name + ": kubelet to " + u.to)
	type step struct {
		name string
		fn   func(log *os.File) error
	}
	// drain is retried: it fails on a transport error while a server
	// behind the load balancer restarts, and an operator runs it again.
	steps := []step{{"drain", func(log *os.File) error {
		return retryTransient(ctx, log, 3, func() error {
			return kubectl(ctx, log, u.p, "drain", n.Name, "--ignore-daemonsets", "--delete-emptydir-data", "--timeout=180s")
		})
	}}}
	if !n.ControlPlane { // a control-plane node ran it for its control plane
		steps = append(steps, step{"kubeadm upgrade node", func(log *os.File) error {
			return inNode(ctx, log, u.s, n, "kubeadm", "upgrade", "node", ignorePreflight)
		}})
	}
	steps = append(steps, []step{
		{"install kubelet " + u.to + ", systemctl restart kubelet", func(log *os.File) error {
			ps, err := loadParts(u.p.Parts)
			if err != nil {
				return err
			}
			if err := installRelease(ps, filepath.Join(u.p.nodeDir(n), "bin"), "kubelet", u.to); err != nil {
				return err
			}
			if err := inNode(ctx, log, u.s, n, "systemctl", "daemon-reload"); err != nil {
				return err
			}
			return inNode(ctx, log, u.s, n, "systemctl", "restart", "kubelet")
		}},
		{"Ready at " + u.to, func(log *os.File) error { return u.waitNodeVersion(ctx, log, n) }},
		{"uncordon", func(log *os.File) error { return kubectl(ctx, log, u.p, "uncordon", n.Name) }},
	}...)
	for _, st := range steps {
		if err := u.r.step(n.Name, st.name, st.fn); err != nil {
			return err
		}
	}
	return nil
}

// rollback puts a control-plane node's kube-apiserver, controller manager
// and scheduler back to the manifests kubeadm saved before it upgraded
// them (etcd stays: its data is not downgraded), waits for the vanilla
// server, then puts the new manifests back.
func (u *upgrader) rollback(ctx context.Context, n node) error {
	manifests := filepath.Join(u.p.nodeDir(n), "fs", "etc-kubernetes", "manifests")
	forward := filepath.Join(u.p.nodeDir(n), "fs", "etc-kubernetes", "mvp", "forward")
	components := []string{"kube-apiserver.yaml", "kube-controller-manager.yaml", "kube-scheduler.yaml"}
	u.load.enter(n.Name + ": rollback to " + u.from + " from kubeadm's backup")
	if err := u.r.step(n.Name, "rollback to "+u.from+" from kubeadm's manifest backup", func(log *os.File) error {
		backup, err := latestBackup(filepath.Join(u.p.nodeDir(n), "fs", "etc-kubernetes", "tmp"))
		if err != nil {
			return err
		}
		fmt.Fprintf(log, "backup %s\n", backup)
		if err := copyFiles(manifests, forward, components); err != nil {
			return err
		}
		if err := copyFiles(backup, manifests, components); err != nil {
			return err
		}
		return u.waitStaticPod(ctx, log, n, false)
	}); err != nil {
		return err
	}
	u.load.enter(n.Name + ": forward to ours again")
	return u.r.step(n.Name, "forward to ours again", func(log *os.File) error {
		if err := copyFiles(forward, manifests, components); err != nil {
			return err
		}
		return u.waitStaticPod(ctx, log, n, true)
	})
}

// latestBackup is the newest of kubeadm's kubeadm-backup-manifests-* folders.
func latestBackup(tmp string) (string, error) {
	found, err := filepath.Glob(filepath.Join(tmp, "kubeadm-backup-manifests-*"))
	if err != nil || len(found) == 0 {
		return "", fmt.Errorf("no kubeadm manifest backup in %s (kubeadm upgrade writes one)", tmp)
	}
	sort.Strings(found)
	return found[len(found)-1], nil
}

// copyFiles copies the named files from one folder to another, each by a
// rename of a full copy, so that the kubelet never reads half a manifest.
func copyFiles(from, to string, names []string) error {
	if err := os.MkdirAll(to, 0o755); err != nil {
		return err
	}
	for _, name := range names {
		b, err := os.ReadFile(filepath.Join(from, name))
		if err != nil {
			return err
		}
		tmp := filepath.Join(to, "."+name+".tmp")
		if err := os.WriteFile(tmp, b, 0o600); err != nil {
			return err
		}
		if err := os.Rename(tmp, filepath.Join(to, name)); err != nil {
			return err
		}
	}
	return nil
}

// retryTransient runs fn up to attempts times, again only after an error
// that says the connection failed, not that the request was refused.
func retryTransient(ctx context.Context, log *os.File, attempts int, fn func() error) error {
	var err error
	for i := 0; i < attempts; i++ {
		if err = fn(); err == nil || !transient(log) {
			return err
		}
		fmt.Fprintf(log, "# attempt %d failed on a connection error; again in 5s\n", i+1)
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(5 * time.Second):
		}
	}
	return err
}

// transient reports whether the last lines of log name a connection
// failure (TLS handshake timeout, EOF, connection refused or reset).
func transient(log *os.File) bool {
	b, err := os.ReadFile(log.Name())
	if err != nil {
		return false
	}
	if len(b) > 2048 {
		b = b[len(b)-2048:]
	}
	tail := string(b)
	for _, s := range []string{"TLS handshake timeout", "EOF", "connection refused", "connection reset", "i/o timeout"} {
		if strings.Contains(tail, s) {
			return true
		}
	}
	return false
}
