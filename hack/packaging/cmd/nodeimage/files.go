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
	"bytes"
	"debug/elf"
	"fmt"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"sort"
	"strings"
)

// entry is one path of the image's file system.
type entry struct {
	path   string // absolute, in the image
	src    string // regular file: where its bytes come from
	target string // symbolic link: what it points to
	dir    bool
	mode   os.FileMode
}

// tree is the image's file system, keyed by path; parents are added with
// every entry.
type tree map[string]entry

func (t tree) put(e entry) error {
	e.path = path.Clean("/" + e.path)
	if old, ok := t[e.path]; ok && !old.dir && old != e {
		return fmt.Errorf("%s is added twice, differently", e.path)
	}
	t[e.path] = e
	for dir := path.Dir(e.path); dir != "/"; dir = path.Dir(dir) {
		if _, ok := t[dir]; !ok {
			t[dir] = entry{path: dir, dir: true, mode: 0o755}
		}
	}
	return nil
}

// sorted lists the entries parents first, each folder before what it holds.
func (t tree) sorted() []entry {
	out := make([]entry, 0, len(t))
	for _, e := range t {
		out = append(out, e)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].path < out[j].path })
	return out
}

// collect turns the flags into the image's tree.
func collect(o options) (tree, error) {
	t := tree{}
	var elves []string
	for _, a := range o.adds {
		src, dst, ok := strings.Cut(a, ":")
		if !ok || src == "" || dst == "" {
			return nil, fmt.Errorf("-add %q: want SRC:DST", a)
		}
		fi, err := os.Stat(src)
		if err != nil {
			return nil, fmt.Errorf("-add %q: %w", a, err)
		}
		if !fi.Mode().IsRegular() {
			return nil, fmt.Errorf("-add %q: %s is not a regular file", a, src)
		}
		if err := t.put(entry{path: dst, src: src, mode: fi.Mode().Perm()}); err != nil {
			return nil, err
		}
		if isDynamicELF(src) {
			elves = append(elves, src)
		}
	}
	for _, l := range o.links {
		dst, target, ok := strings.Cut(l, ":")
		if !ok || dst == "" || target == "" {
			return nil, fmt.Errorf("-link %q: want DST:TARGET", l)
		}
		if err := t.put(entry{path: dst, target: target, mode: 0o777}); err != nil {
			return nil, err
		}
	}
	for _, d := range o.dirs {
		mode := os.FileMode(0o755)
		if path.Clean(d) == "/tmp" {
			mode = 0o777 | os.ModeSticky
		}
		if err := t.put(entry{path: d, dir: true, mode: mode}); err != nil {
			return nil, err
		}
	}
	if o.libs {
		if err := addLibraries(t, elves); err != nil {
			return nil, err
		}
	}
	return t, nil
}

// isDynamicELF says whether the file is an ELF binary with an interpreter
// (a static Go binary has none, and needs no libraries).
func isDynamicELF(file string) bool {
	f, err := elf.Open(file)
	if err != nil {
		return false
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			return true
		}
	}
	return false
}

// addLibraries adds every library ldd resolves for the binaries, at the
// path the loader asks for, as a link when that path is one on this
// machine.
func addLibraries(t tree, binaries []string) error {
	for _, bin := range binaries {
		libs, err := ldd(bin)
		if err != nil {
			return err
		}
		for _, lib := range libs {
			if err := addResolved(t, lib); err != nil {
				return fmt.Errorf("%s: %w", bin, err)
			}
		}
	}
	return nil
}

// addResolved adds a file and, when its path is a link, the link and what
// it ends at.
func addResolved(t tree, p string) error {
	real, err := filepath.EvalSymlinks(p)
	if err != nil {
		return err
	}
	fi, err := os.Stat(real)
	if err != nil {
		return err
	}
	if err := t.put(entry{path: real, src: real, mode: fi.Mode().Perm()}); err != nil {
		return err
	}
	if real != p {
		return t.put(entry{path: p, target: real, mode: 0o777})
	}
	return nil
}

// ldd lists the absolute paths of the libraries a binary loads, the
// loader included.
func ldd(bin string) ([]string, error) {
	out, err := exec.Command("ldd", bin).Output()
	if err != nil {
		return nil, fmt.Errorf("ldd %s: %w", bin, err)
	}
	var libs []string
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		for _, field := range strings.Fields(sc.Text()) {
			if strings.HasPrefix(field, "/") {
				libs = append(libs, field)
			}
		}
	}
	return libs, sc.Err()
}
