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

// Command nodeimage packs files from this machine into a one-layer image
// and writes it as a `docker save` tarball, which `ctr images import`
// reads. The node harness (hack/cluster) builds every image its nodes run
// with it: pause, etcd, CoreDNS, the control-plane components of both
// releases and the workload, so nothing is pulled from a registry.
//
//	nodeimage -ref registry.mvp.test/kube-proxy:v1.37.2 -out kube-proxy.tar \
//	  -add _output/bin/kube-proxy:/usr/local/bin/kube-proxy \
//	  -add /usr/sbin/xtables-nft-multi:/usr/sbin/xtables-nft-multi \
//	  -link /usr/sbin/iptables:xtables-nft-multi -libs
//
// With -libs, the shared libraries every added ELF file needs (as ldd
// lists them) are added at the paths the loader looks them up by.
package main

import (
	"flag"
	"fmt"
	"os"
	"strings"
	"time"
)

// listFlag is a repeatable string flag.
type listFlag []string

func (l *listFlag) String() string     { return strings.Join(*l, ",") }
func (l *listFlag) Set(v string) error { *l = append(*l, v); return nil }

type options struct {
	refs, adds, links, dirs, envs listFlag
	entrypoint, cmd               listFlag
	user, workdir, out, created   string
	libs                          bool
}

func main() {
	var o options
	flag.Var(&o.refs, "ref", "image reference to tag the tarball with (repeatable; at least one)")
	flag.Var(&o.adds, "add", "SRC:DST, a file of this machine and its path in the image (repeatable)")
	flag.Var(&o.links, "link", "DST:TARGET, a symbolic link in the image (repeatable)")
	flag.Var(&o.dirs, "dir", "an empty folder in the image, mode 1777 for /tmp and 0755 otherwise (repeatable)")
	flag.Var(&o.envs, "env", "KEY=VALUE in the image's environment (repeatable)")
	flag.Var(&o.entrypoint, "entrypoint", "the entrypoint, one argument per flag")
	flag.Var(&o.cmd, "cmd", "the default arguments, one per flag")
	flag.StringVar(&o.user, "user", "", "the user the image runs as (default root)")
	flag.StringVar(&o.workdir, "workdir", "/", "the working directory")
	flag.StringVar(&o.out, "out", "", "the tarball to write; required")
	flag.StringVar(&o.created, "created", "2026-01-01T00:00:00Z", "creation time of the image and its files, RFC 3339")
	flag.BoolVar(&o.libs, "libs", false, "add the shared libraries of every added ELF file")
	flag.Parse()
	if err := run(o); err != nil {
		fmt.Fprintln(os.Stderr, "nodeimage:", err)
		os.Exit(1)
	}
}

func run(o options) error {
	if len(o.refs) == 0 || o.out == "" || len(o.adds) == 0 {
		return fmt.Errorf("-ref, -out and at least one -add are required")
	}
	created, err := time.Parse(time.RFC3339, o.created)
	if err != nil {
		return fmt.Errorf("-created: %w", err)
	}
	files, err := collect(o)
	if err != nil {
		return err
	}
	return write(o, files, created)
}
