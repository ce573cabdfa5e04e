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
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

// state is everything the harness made on this machine, written to disk as
// soon as each thing exists, so that down removes it even after a start
// that failed half-way or was killed.
type state struct {
	path string

	Version     string            // the release the nodes run now
	Netns       []string          // network namespaces, in creation order
	Pids        map[string]int    // long-running processes: "haproxy", "agent/cp1", ...
	Cgroups     []string          // cgroup folders made, parents first
	Mountpoints []string          // empty folders made on the host as mount targets
	Sysctls     map[string]string // global sysctls changed: their value before
}

func loadState(path string) (*state, error) {
	s := &state{path: path, Pids: map[string]int{}, Sysctls: map[string]string{}}
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return s, nil
	}
	if err != nil {
		return nil, err
	}
	if err := json.Unmarshal(b, s); err != nil {
		return nil, fmt.Errorf("%s: %w (remove it only after checking nothing of the cluster runs)", path, err)
	}
	if s.Pids == nil {
		s.Pids = map[string]int{}
	}
	if s.Sysctls == nil {
		s.Sysctls = map[string]string{}
	}
	return s, nil
}

// save writes the state atomically.
func (s *state) save() error {
	b, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(s.path), 0o755); err != nil {
		return err
	}
	tmp := s.path + ".tmp"
	if err := os.WriteFile(tmp, b, 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, s.path)
}

func (s *state) empty() bool {
	return len(s.Netns) == 0 && len(s.Pids) == 0 && len(s.Cgroups) == 0 &&
		len(s.Mountpoints) == 0 && len(s.Sysctls) == 0
}

// running lists the recorded processes that are still alive.
func (s *state) running() []string {
	var out []string
	for name, pid := range s.Pids {
		if alive(pid) {
			out = append(out, fmt.Sprintf("%s (pid %d)", name, pid))
		}
	}
	return out
}

func alive(pid int) bool {
	if pid <= 0 {
		return false
	}
	if err := syscall.Kill(pid, 0); err != nil {
		return false
	}
	// A zombie is dead for our purposes.
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	fields := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+1:]))
	return len(fields) > 0 && fields[0] != "Z"
}

// setSysctl records a global sysctl's value the first time it is changed,
// then sets it.
func (s *state) setSysctl(key, value string) error {
	file := "/proc/sys/" + strings.ReplaceAll(key, ".", "/")
	old, err := os.ReadFile(file)
	if err != nil {
		return err
	}
	if _, seen := s.Sysctls[key]; !seen {
		s.Sysctls[key] = strings.TrimSpace(string(old))
		if err := s.save(); err != nil {
			return err
		}
	}
	return os.WriteFile(file, []byte(value), 0o644)
}

// recordSysctls records the sysctls kubelet writes at start
// (vm.overcommit_memory, kernel.panic, kernel.panic_on_oops) before any
// kubelet runs, so down puts them back.
func (s *state) recordSysctls(keys ...string) error {
	for _, key := range keys {
		if _, seen := s.Sysctls[key]; seen {
			continue
		}
		b, err := os.ReadFile("/proc/sys/" + strings.ReplaceAll(key, ".", "/"))
		if err != nil {
			return err
		}
		s.Sysctls[key] = strings.TrimSpace(string(b))
	}
	return s.save()
}

// lock takes the harness's lock for the whole command: a second command
// while one runs fails at once, naming the holder.
func lock(dir string) (release func(), err error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	path := filepath.Join(dir, "lock")
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, err
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		b, _ := os.ReadFile(path)
		f.Close()
		holder := strings.TrimSpace(string(b))
		return nil, fmt.Errorf("another cluster command is running (%s holds %s); wait for it or stop it first", holder, path)
	}
	_ = f.Truncate(0)
	_, _ = f.WriteAt([]byte(strings.Join(os.Args[1:2], " ")+" pid "+strconv.Itoa(os.Getpid())+"\n"), 0)
	// The file is emptied before the lock goes, so it never names a
	// holder that has ended.
	return func() { _ = f.Truncate(0); f.Close() }, nil
}
