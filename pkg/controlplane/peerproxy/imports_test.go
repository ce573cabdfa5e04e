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

package peerproxy

import (
	"os/exec"
	"slices"
	"strings"
	"testing"
)

const module = "github.com/mvp-apiserver/kube-apiserver"

// allowedImports lists, for each piece, the packages of ours it may depend
// on (directly or not): the leaves (the peer table's data, the peer client,
// the generic controller loop) none; the peer table's controller the table
// and the loop; the proxy filter only the leaves it uses; discovery and
// registration the leaves and the loop, never each other or peertable
// (docs/design.md).
var allowedImports = map[string][]string{
	"controller":   nil,
	"peerclient":   nil,
	"peers":        nil,
	"peertable":    {"controller", "peers"},
	"proxy":        {"peers", "peerclient"},
	"discovery":    {"controller", "peers", "peerclient"},
	"registration": {"controller", "peers", "peerclient"},
}

// goList runs go list in the module and returns its output's lines.
func goList(t *testing.T, args ...string) []string {
	t.Helper()
	out, err := exec.Command("go", append([]string{"list"}, args...)...).Output()
	if err != nil {
		t.Fatalf("go list %s: %v", strings.Join(args, " "), err)
	}
	return strings.Fields(string(out))
}

// The compiler keeps dependencies one way only if no piece imports another
// against the arrows; this checks what each piece's build pulls in.
func TestImportsPointOneWay(t *testing.T) {
	base := module + "/pkg/controlplane/peerproxy/"
	for piece, allowed := range allowedImports {
		for _, dep := range goList(t, "-deps", "-f", "{{.ImportPath}}", base+piece) {
			ours, ok := strings.CutPrefix(dep, module+"/")
			if !ok || dep == base+piece {
				continue
			}
			name, _ := strings.CutPrefix(ours, "pkg/controlplane/peerproxy/")
			if !slices.Contains(allowed, name) {
				t.Errorf("%s depends on %s; it may depend only on %v of ours", piece, ours, allowed)
			}
		}
	}
}

// Only the command wires the proxy: no other package of ours imports the
// wiring package.
func TestOnlyTheCommandImportsTheWiring(t *testing.T) {
	wiring := module + "/pkg/controlplane/peerproxy"
	for _, line := range goList(t, "-f", "{{.ImportPath}}={{join .Imports \",\"}}", module+"/...") {
		pkg, imports, _ := strings.Cut(line, "=")
		if slices.Contains(strings.Split(imports, ","), wiring) && pkg != module+"/cmd/kube-apiserver/app" {
			t.Errorf("%s imports %s; only cmd/kube-apiserver/app may", pkg, wiring)
		}
	}
}
