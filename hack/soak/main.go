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

// Command soak (make soak) runs three kube-apiservers on one etcd for a
// long time: ours without batch/v1 (it proxies Jobs), ours in full, and the
// previous release's vanilla server. Under steady load (watches, reads and
// creates of Jobs through every server) they restart in turn. At the end
// each of our servers' live heap, goroutines and open files must be within
// 10% of where they were after the first restart, no read may have been a
// 404, and every watcher must have seen every Job exactly once, in order.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"
)

// options are the command line.
type options struct {
	binDir, out  string
	duration     time.Duration
	restartEvery time.Duration
	sampleEvery  time.Duration
	settle       time.Duration
	createEvery  time.Duration
	watchers     int
}

func parseFlags(args []string) (options, error) {
	fs := flag.NewFlagSet("soak", flag.ContinueOnError)
	var o options
	fs.StringVar(&o.binDir, "bin-dir", "_output/bin", "folder with kube-apiserver, kube-apiserver-previous and etcd")
	fs.StringVar(&o.out, "out", "_output/soak", "folder for soak.json, the plots and the servers' files")
	fs.DurationVar(&o.duration, "duration", time.Hour, "how long the servers restart in turn under load")
	fs.DurationVar(&o.restartEvery, "restart-every", 3*time.Minute, "time between the start of one restart and the next")
	fs.DurationVar(&o.sampleEvery, "sample-every", 15*time.Second, "how often our servers' heap, goroutines and open files are read")
	fs.DurationVar(&o.settle, "settle", time.Minute, "how long after a restart the baseline and the last figures are taken")
	fs.DurationVar(&o.createEvery, "create-every", 2*time.Second, "how often a Job is created")
	fs.IntVar(&o.watchers, "watchers", 3, "watchers of Jobs through each server")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	switch {
	case fs.NArg() > 0:
		return o, fmt.Errorf("unexpected arguments %q", fs.Args())
	case o.duration < o.restartEvery:
		return o, fmt.Errorf("-duration %s is shorter than -restart-every %s: no restart would run", o.duration, o.restartEvery)
	case o.restartEvery < 30*time.Second || o.sampleEvery <= 0 || o.settle <= 0 || o.createEvery <= 0:
		return o, errors.New("-restart-every must be at least 30s, and -sample-every, -settle and -create-every above 0")
	case o.watchers < 1:
		return o, fmt.Errorf("-watchers %d: at least one per server", o.watchers)
	}
	for _, b := range []string{"kube-apiserver", "kube-apiserver-previous", "etcd"} {
		if _, err := os.Stat(filepath.Join(o.binDir, b)); err != nil {
			return o, fmt.Errorf("-bin-dir %s: %w (make build makes it)", o.binDir, err)
		}
	}
	return o, nil
}

func main() {
	o, err := parseFlags(os.Args[1:])
	if err != nil {
		fmt.Fprintln(os.Stderr, "soak:", err)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	res, err := run(ctx, o)
	if err != nil {
		fmt.Fprintln(os.Stderr, "soak:", err)
		os.Exit(1)
	}
	if err := res.write(o.out); err != nil {
		fmt.Fprintln(os.Stderr, "soak:", err)
		os.Exit(1)
	}
	fmt.Println(res.summary())
	if !res.Passed {
		os.Exit(3)
	}
}
