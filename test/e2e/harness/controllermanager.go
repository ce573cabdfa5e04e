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

package harness

import (
	"fmt"
	"path/filepath"
	"strings"
)

// StartControllerManager runs upstream's kube-controller-manager from
// binDir (built from the pinned module) against server s only, with the
// given controllers (e.g. "namespace", "garbagecollector"). It serves
// nothing and takes no leader lease; its files go under dir. As kubeadm
// runs it, each controller uses its own ServiceAccount's tokens
// (--use-service-account-credentials), so its requests carry the token's
// extras; the kubeconfig's admin only creates those ServiceAccounts and
// requests their tokens.
func StartControllerManager(binDir, dir, name string, s *Server, controllers ...string) (*Process, error) {
	kubeconfig, err := s.Kubeconfig(dir)
	if err != nil {
		return nil, fmt.Errorf("kubeconfig for %s: %w", s.Opts.Name, err)
	}
	args := []string{
		filepath.Join(binDir, "kube-controller-manager"),
		"--kubeconfig=" + kubeconfig,
		"--authentication-kubeconfig=" + kubeconfig,
		"--authorization-kubeconfig=" + kubeconfig,
		"--controllers=" + strings.Join(controllers, ","),
		"--leader-elect=false",
		"--secure-port=0",
		"--use-service-account-credentials=true",
		"--v=2",
	}
	return startProcess(name, filepath.Join(dir, name+".log"), "", nil, args)
}
