package harness

import (
	"fmt"
	"path/filepath"
	"strings"
)

// StartControllerManager runs upstream's kube-controller-manager (built
// from the pinned module) against one server only, with the given
// controllers (e.g. "namespace", "garbagecollector"). It serves nothing
// and takes no leader lease, so several runs never interfere.
func (c *Cluster) StartControllerManager(name string, s *Server, controllers ...string) (*Process, error) {
	kubeconfig := filepath.Join(c.Dir, name+".kubeconfig")
	if err := s.WriteKubeconfig(kubeconfig); err != nil {
		return nil, fmt.Errorf("writing %s: %w", kubeconfig, err)
	}
	args := []string{
		filepath.Join(c.BinDir, "kube-controller-manager"),
		"--kubeconfig=" + kubeconfig,
		"--authentication-kubeconfig=" + kubeconfig,
		"--authorization-kubeconfig=" + kubeconfig,
		"--controllers=" + strings.Join(controllers, ","),
		"--leader-elect=false",
		"--secure-port=0",
		"--use-service-account-credentials=false",
		"--v=2",
	}
	return startProcess(name, filepath.Join(c.Dir, name+".log"), "", nil, args)
}
