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

// Package codeshape checks the shape every file of the repository keeps:
// the license header, files and functions short enough to read in one
// sitting, and no reference to documents outside the repository.
package codeshape

import (
	"bytes"
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const (
	maxFileLines = 400
	maxFuncLines = 50
	licenseLine  = "Copyright 2026 The Mixed Version Proxy Authors."
)

// skipped are directories that hold what the build makes or fetches.
var skipped = map[string]bool{".git": true, "_output": true}

// repoFile is one file of the repository, read once.
type repoFile struct {
	path string // relative to the repository's root
	data []byte
}

func repoFiles(t *testing.T) []repoFile {
	t.Helper()
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(root, "go.mod")); err != nil {
		t.Fatalf("repository root not found from %s: %v", root, err)
	}
	var files []repoFile
	err = filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if skipped[d.Name()] {
				return filepath.SkipDir
			}
			return nil
		}
		if !d.Type().IsRegular() || strings.HasSuffix(path, ".sum") {
			return nil
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, path)
		files = append(files, repoFile{path: rel, data: data})
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(files) < 50 {
		t.Fatalf("only %d files found under %s", len(files), root)
	}
	return files
}

// needsHeader reports whether the file is source of ours that carries the
// license header: Go, shell and the Makefile.
func needsHeader(f repoFile) bool {
	switch filepath.Ext(f.path) {
	case ".go", ".sh":
		return true
	}
	return filepath.Base(f.path) == "Makefile" || f.path == filepath.Join(".ci", "run")
}

func TestLicenseHeader(t *testing.T) {
	checked := 0
	for _, f := range repoFiles(t) {
		if !needsHeader(f) {
			continue
		}
		checked++
		head := f.data[:min(len(f.data), 400)]
		if !bytes.Contains(head, []byte(licenseLine)) || !bytes.Contains(f.data[:min(len(f.data), 1000)], []byte("Apache License, Version 2.0")) {
			t.Errorf("%s: no license header (%q and the Apache-2.0 notice) at its top", f.path, licenseLine)
		}
	}
	if checked == 0 {
		t.Fatal("no source file checked")
	}
}

// TestNoOutsideDocument keeps references to the product's specification,
// which lives outside the repository, out of every file: code and docs cite
// identifiers and docs/ instead.
func TestNoOutsideDocument(t *testing.T) {
	word := []byte("SP" + "EC")
	for _, f := range repoFiles(t) {
		if i := bytes.Index(f.data, word); i >= 0 {
			line := bytes.Count(f.data[:i], []byte("\n")) + 1
			t.Errorf("%s:%d names the specification outside the repository", f.path, line)
		}
	}
}

func TestFileLength(t *testing.T) {
	for _, f := range repoFiles(t) {
		if filepath.Ext(f.path) != ".go" {
			continue
		}
		if n := bytes.Count(f.data, []byte("\n")); n > maxFileLines {
			t.Errorf("%s: %d lines, more than %d", f.path, n, maxFileLines)
		}
	}
}

func TestFunctionLength(t *testing.T) {
	fset := token.NewFileSet()
	for _, f := range repoFiles(t) {
		if filepath.Ext(f.path) != ".go" || strings.HasSuffix(f.path, "_test.go") {
			continue
		}
		file, err := parser.ParseFile(fset, f.path, f.data, parser.SkipObjectResolution)
		if err != nil {
			t.Errorf("%s: %v", f.path, err)
			continue
		}
		for _, decl := range file.Decls {
			fn, ok := decl.(*ast.FuncDecl)
			if !ok || fn.Body == nil {
				continue
			}
			start := fset.Position(fn.Pos()).Line
			end := fset.Position(fn.End()).Line
			if n := end - start + 1; n > maxFuncLines {
				t.Errorf("%s:%d: %s is %d lines, more than %d", f.path, start, fn.Name.Name, n, maxFuncLines)
			}
		}
	}
}
