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
	"bufio"
	"errors"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// cgroupFS is where this machine mounts its cgroup hierarchies (v1, with
// the v2 "unified" one beside them).
const cgroupFS = "/sys/fs/cgroup"

// harnessCgroup is the cgroup this process runs in, in the memory
// hierarchy: the machine's own limit sits there, so every node's Pods go
// below it.
func harnessCgroup() (string, error) {
	f, err := os.Open("/proc/self/cgroup")
	if err != nil {
		return "", err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		parts := strings.SplitN(sc.Text(), ":", 3)
		if len(parts) == 3 && slices.Contains(strings.Split(parts[1], ","), "memory") {
			return parts[2], nil
		}
	}
	return "/", sc.Err()
}

// nodeCgroupRoot is a node's kubelet --cgroup-root: a folder of its own in
// every hierarchy, so that kubelets never remove each other's Pod cgroups.
func nodeCgroupRoot(n node) (string, error) {
	base, err := harnessCgroup()
	if err != nil {
		return "", err
	}
	return path.Join(base, "mvp-cluster", n.Name), nil
}

func hierarchies() ([]string, error) {
	entries, err := os.ReadDir(cgroupFS)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, e := range entries {
		if e.IsDir() {
			out = append(out, filepath.Join(cgroupFS, e.Name()))
		}
	}
	return out, nil
}

// makeCgroup makes root in every hierarchy, recording each folder it
// makes; cpuset folders get their parent's CPUs and memory nodes, which a
// new cpuset lacks.
func makeCgroup(s *state, root string) error {
	hs, err := hierarchies()
	if err != nil {
		return err
	}
	for _, h := range hs {
		dir := h
		for _, part := range strings.Split(strings.Trim(root, "/"), "/") {
			dir = filepath.Join(dir, part)
			if _, err := os.Stat(dir); err == nil {
				continue
			}
			if err := os.Mkdir(dir, 0o755); err != nil {
				return fmt.Errorf("cgroup %s: %w", dir, err)
			}
			s.Cgroups = append(s.Cgroups, dir)
			if err := s.save(); err != nil {
				return err
			}
			if strings.HasSuffix(h, "/cpuset") {
				if err := inheritCpuset(dir); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

func inheritCpuset(dir string) error {
	for _, f := range []string{"cpuset.cpus", "cpuset.mems"} {
		b, err := os.ReadFile(filepath.Join(filepath.Dir(dir), f))
		if err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(dir, f), b, 0o644); err != nil {
			return fmt.Errorf("%s/%s: %w", dir, f, err)
		}
	}
	return nil
}

// removeCgroups removes every recorded cgroup folder with what kubelet
// and runc made below it, deepest first, waiting (up to timeout) for the
// processes in them to be gone.
func removeCgroups(s *state, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	var errs []error
	for i := len(s.Cgroups) - 1; i >= 0; i-- {
		dir := s.Cgroups[i]
		if err := removeTree(dir, deadline); err != nil {
			errs = append(errs, err)
			continue
		}
		s.Cgroups = slices.Delete(s.Cgroups, i, i+1)
	}
	if err := s.save(); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// removeTree rmdirs a cgroup folder's subfolders, then the folder.
func removeTree(dir string, deadline time.Time) error {
	entries, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	for _, e := range entries {
		if e.IsDir() {
			if err := removeTree(filepath.Join(dir, e.Name()), deadline); err != nil {
				return err
			}
		}
	}
	for {
		err := os.Remove(dir)
		if err == nil || errors.Is(err, os.ErrNotExist) {
			return nil
		}
		if time.Now().After(deadline) {
			procs, _ := os.ReadFile(filepath.Join(dir, "cgroup.procs"))
			return fmt.Errorf("cgroup %s: %w (processes still in it: %s)", dir, err, strings.Fields(string(procs)))
		}
		time.Sleep(200 * time.Millisecond)
	}
}
