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
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"
)

// get reads one URL with the load's client.
func (l *load) get(ctx context.Context, url string) (int, []byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return 0, nil, err
	}
	resp, err := l.client.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 8<<20))
	return resp.StatusCode, b, err
}

// getJSON reads one URL into v; anything but 200 is an error.
func (l *load) getJSON(ctx context.Context, url string, v any) error {
	code, b, err := l.get(ctx, url)
	if err != nil {
		return err
	}
	if code != http.StatusOK {
		return fmt.Errorf("GET %s: HTTP %d: %.200s", url, code, b)
	}
	return json.Unmarshal(b, v)
}

// podStatus is the part of a Pod or Node the checks read.
type podStatus struct {
	Spec struct {
		Containers []struct {
			Image string `json:"image"`
		} `json:"containers"`
	} `json:"spec"`
	Status struct {
		Conditions []struct {
			Type, Status       string
			LastTransitionTime time.Time `json:"lastTransitionTime"`
		} `json:"conditions"`
		NodeInfo struct {
			KubeletVersion string `json:"kubeletVersion"`
		} `json:"nodeInfo"`
	} `json:"status"`
}

func (ps podStatus) ready() bool {
	for _, c := range ps.Status.Conditions {
		if c.Type == "Ready" {
			return c.Status == "True"
		}
	}
	return false
}

// readySince is when the Pod's Ready condition last changed.
func (ps podStatus) readySince() time.Time {
	for _, c := range ps.Status.Conditions {
		if c.Type == "Ready" {
			return c.LastTransitionTime
		}
	}
	return time.Time{}
}

// waitStaticPod waits until a control-plane node's own server answers as
// the release wanted (ours, or the previous vanilla one), is ready, and
// its mirror Pod is Ready with that image; the time from the manifest's
// change to the Pod's Ready transition is recorded.
func (u *upgrader) waitStaticPod(ctx context.Context, log *os.File, n node, ours bool) error {
	changed, err := manifestChangedAt(filepath.Join(u.p.nodeDir(n), "fs", "etc-kubernetes", "manifests", "kube-apiserver.yaml"))
	if err != nil {
		return err
	}
	image, want := registry+"/kube-apiserver:"+u.from, u.from
	if ours {
		image, want = oursRef(u.to), u.to+"+mvp"
	}
	var last string
	var readyAt time.Time
	err = waitFor(ctx, 5*time.Minute, n.Name+"'s kube-apiserver "+want+" Ready", func() (bool, error) {
		var ok bool
		ok, readyAt, last = u.staticPodState(ctx, n, want, image)
		return ok, nil
	})
	fmt.Fprintf(log, "last seen: %s\n", last)
	if err != nil {
		return fmt.Errorf("%w (last seen: %s)", err, last)
	}
	// The kubelet's own time of Ready (whole seconds), not when this
	// looked: kubeadm goes on to the other components before it returns.
	if readyAt.IsZero() || readyAt.Before(changed.Truncate(time.Second)) {
		return fmt.Errorf("mirror Pod Ready at %v, before its manifest changed at %v", readyAt, changed)
	}
	took := readyAt.Sub(changed).Seconds()
	u.res.StaticPods = append(u.res.StaticPods, staticPod{Node: n.Name, Image: image, ReadySeconds: took})
	fmt.Fprintf(log, "%s Ready %.1fs after its manifest was moved into place\n", image, took)
	return nil
}

// staticPodState looks once at a node's own server and its mirror Pod:
// whether the server runs the wanted release and is ready and the Pod is
// Ready with the image, since when the Pod is Ready, and what fell short.
func (u *upgrader) staticPodState(ctx context.Context, n node, want, image string) (bool, time.Time, string) {
	server := "https://" + n.endpoint()
	var v struct {
		GitVersion string `json:"gitVersion"`
	}
	if err := u.load.getJSON(ctx, server+"/version", &v); err != nil {
		return false, time.Time{}, err.Error()
	}
	if !strings.HasPrefix(v.GitVersion, want) {
		return false, time.Time{}, "server is " + v.GitVersion
	}
	if code, _, err := u.load.get(ctx, server+"/readyz"); err != nil || code != http.StatusOK {
		return false, time.Time{}, fmt.Sprintf("readyz: %d %v", code, err)
	}
	var pod podStatus
	if err := u.load.getJSON(ctx, u.p.lbURL()+"/api/v1/namespaces/kube-system/pods/kube-apiserver-"+n.Name, &pod); err != nil {
		return false, time.Time{}, err.Error()
	}
	ok := pod.ready() && len(pod.Spec.Containers) > 0 && pod.Spec.Containers[0].Image == image
	return ok, pod.readySince(), fmt.Sprintf("mirror Pod ready=%v image=%v", pod.ready(), pod.Spec.Containers)
}

// waitNodeVersion waits until a node is Ready with its kubelet at the new
// release.
func (u *upgrader) waitNodeVersion(ctx context.Context, log *os.File, n node) error {
	var last string
	return waitFor(ctx, 3*time.Minute, n.Name+" Ready with kubelet "+u.to, func() (bool, error) {
		var node podStatus
		if err := u.load.getJSON(ctx, u.p.lbURL()+"/api/v1/nodes/"+n.Name, &node); err != nil {
			last = err.Error()
			return false, nil
		}
		if v := node.Status.NodeInfo.KubeletVersion; v != last {
			fmt.Fprintf(log, "%s kubelet %s ready=%v\n", time.Now().Format("15:04:05.000"), v, node.ready())
			last = v
		}
		return node.ready() && node.Status.NodeInfo.KubeletVersion == u.to, nil
	})
}

// check is what must hold after the rollout: the Deployment at its
// replicas, and every control-plane node's server listing
// storagemigration.k8s.io/v1 in its discovery.
func (u *upgrader) check(ctx context.Context) error {
	return u.r.step("cluster", "Deployment web at 3 replicas, storagemigration.k8s.io/v1 in every server's discovery", func(log *os.File) error {
		if err := kubectl(ctx, log, u.p, "rollout", "status", "deployment/web", "--timeout=180s"); err != nil {
			return err
		}
		var d struct {
			Status struct {
				ReadyReplicas int `json:"readyReplicas"`
			} `json:"status"`
		}
		if err := u.load.getJSON(ctx, u.p.lbURL()+"/apis/apps/v1/namespaces/default/deployments/web", &d); err != nil {
			return err
		}
		u.res.WebReady = d.Status.ReadyReplicas
		var missing []string
		u.res.Discovery = map[string]bool{}
		for _, n := range u.p.controlPlanes() {
			ok, err := u.servesMigration(ctx, n)
			if err != nil {
				return err
			}
			u.res.Discovery[n.Name] = ok
			if !ok {
				missing = append(missing, n.Name)
			}
		}
		if d.Status.ReadyReplicas != 3 {
			return fmt.Errorf("Deployment web has %d ready replicas, want 3", d.Status.ReadyReplicas)
		}
		if len(missing) > 0 {
			return fmt.Errorf("storagemigration.k8s.io/v1 missing in the discovery of %s", strings.Join(missing, ", "))
		}
		return nil
	})
}

// servesMigration reports whether a node's own server lists
// storagemigration.k8s.io/v1 in /apis.
func (u *upgrader) servesMigration(ctx context.Context, n node) (bool, error) {
	var groups struct {
		Groups []struct {
			Name     string `json:"name"`
			Versions []struct {
				Version string `json:"version"`
			} `json:"versions"`
		} `json:"groups"`
	}
	if err := u.load.getJSON(ctx, "https://"+n.endpoint()+"/apis", &groups); err != nil {
		return false, err
	}
	for _, g := range groups.Groups {
		if g.Name != "storagemigration.k8s.io" {
			continue
		}
		return slices.ContainsFunc(g.Versions, func(v struct {
			Version string `json:"version"`
		}) bool {
			return v.Version == "v1"
		}), nil
	}
	return false, nil
}

// manifestChangedAt is when the file at path last changed in place: its
// inode's change time. kubeadm renders every new manifest first and moves
// each into the manifests folder only when the component before it is
// done (etcd first), and a move keeps the modification time, so that time
// can be minutes earlier than the kubelet saw the change.
func manifestChangedAt(path string) (time.Time, error) {
	var st syscall.Stat_t
	if err := syscall.Stat(path, &st); err != nil {
		return time.Time{}, fmt.Errorf("%s: %w", path, err)
	}
	return time.Unix(st.Ctim.Sec, st.Ctim.Nsec), nil
}
