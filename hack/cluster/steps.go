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
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// stepError names the node and the step that failed, and where its output
// went.
type stepError struct {
	where, step, log string
	err              error
}

func (e *stepError) Error() string {
	msg := fmt.Sprintf("%s: %s: %v", e.where, e.step, e.err)
	if e.log != "" {
		msg += "\n  output: " + e.log
		if tail := tailOf(e.log, 15); tail != "" {
			msg += "\n  last lines:\n" + tail
		}
	}
	return msg
}

func (e *stepError) Unwrap() error { return e.err }

// tailOf returns the last n lines of a file, indented.
func tailOf(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return "    " + strings.Join(lines, "\n    ")
}

// runner prints each step as it runs: where, what, how long it took.
type runner struct {
	logDir  string
	started time.Time
	timings []timing
}

type timing struct {
	Where, Step string
	Seconds     float64
}

// step runs fn as one named step of one node (or "cluster"), printing its
// start and its end with the time it took. fn writes its output to log.
func (r *runner) step(where, name string, fn func(log *os.File) error) error {
	if err := os.MkdirAll(r.logDir, 0o755); err != nil {
		return err
	}
	logPath := filepath.Join(r.logDir, where+"-"+slug(name)+".log")
	log, err := os.Create(logPath)
	if err != nil {
		return err
	}
	defer log.Close()
	fmt.Printf("[%7.1fs] %-8s %s ...\n", time.Since(r.started).Seconds(), where, name)
	t0 := time.Now()
	err = fn(log)
	took := time.Since(t0).Seconds()
	r.timings = append(r.timings, timing{where, name, took})
	if err != nil {
		fmt.Printf("[%7.1fs] %-8s %s FAILED after %.1fs\n", time.Since(r.started).Seconds(), where, name, took)
		return &stepError{where: where, step: name, log: logPath, err: err}
	}
	fmt.Printf("[%7.1fs] %-8s %s done in %.1fs\n", time.Since(r.started).Seconds(), where, name, took)
	return nil
}

func slug(s string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(s) {
		switch {
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9':
			b.WriteRune(r)
		default:
			if b.Len() > 0 && !strings.HasSuffix(b.String(), "-") {
				b.WriteByte('-')
			}
		}
	}
	return strings.Trim(b.String(), "-")
}

// run runs a command to completion, its output to log; the error carries
// the command and its exit.
func run(ctx context.Context, log *os.File, name string, args ...string) error {
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Stdout, cmd.Stderr = log, log
	if log != nil {
		fmt.Fprintf(log, "+ %s %s\n", name, strings.Join(args, " "))
	}
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("%s %s: %w", filepath.Base(name), strings.Join(args, " "), err)
	}
	return nil
}

// output runs a command and returns its standard output.
func output(ctx context.Context, name string, args ...string) (string, error) {
	var stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("%s %s: %w: %s", filepath.Base(name), strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return string(out), nil
}
