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
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// The kubeadm configuration of every node, as docs/upgrade.md's runbook
// has it before the upgrade: the proxy's --peer-ca-file on every server,
// and what these machines need (cgroup v1 with the cgroupfs driver, no
// negative OOM score, a read-only conntrack table size).

// secrets is what joining nodes need: the bootstrap token and the key the
// control-plane certificates are uploaded with.
type secrets struct {
	Token, CertificateKey string
}

func newSecrets() (secrets, error) {
	b := make([]byte, 48)
	if _, err := rand.Read(b); err != nil {
		return secrets{}, err
	}
	h := hex.EncodeToString(b)
	return secrets{Token: h[0:6] + "." + h[6:22], CertificateKey: h[22:86]}, nil
}

// preflightIgnored are kubeadm's checks these machines fail for reasons
// that do not matter here: cgroup v1 (SystemVerification) and that no
// systemd manages the kubelet unit.
const preflightIgnored = "SystemVerification"

// ignorePreflight is the same for kubeadm upgrade, which reads no
// InitConfiguration or JoinConfiguration.
const ignorePreflight = "--ignore-preflight-errors=" + preflightIgnored

func nodeRegistration(n node) string {
	return fmt.Sprintf(`nodeRegistration:
  name: %s
  criSocket: unix://%s
  imagePullPolicy: Never
  ignorePreflightErrors: [%s]
  kubeletExtraArgs:
  - name: node-ip
    value: %s
`, n.Name, containerdSocket, preflightIgnored, n.IP)
}

// initConfig is the first control-plane node's configuration, with the
// cluster's, the kubelets' and kube-proxy's.
func initConfig(n node, version string, sec secrets, peerIPs []string) string {
	return fmt.Sprintf(`apiVersion: kubeadm.k8s.io/v1beta4
kind: InitConfiguration
bootstrapTokens:
- token: %q
  ttl: 24h0m0s
certificateKey: %q
localAPIEndpoint:
  advertiseAddress: %s
  bindPort: %d
patches:
  directory: %s
%s---
apiVersion: kubeadm.k8s.io/v1beta4
kind: ClusterConfiguration
clusterName: %s
kubernetesVersion: %s
controlPlaneEndpoint: %s:%d
imageRepository: %s
networking:
  podSubnet: %s
  serviceSubnet: %s
apiServer:
  # Peers reach each server on the peer network: its certificate names
  # those addresses too.
  certSANs: [%s]
  extraArgs:
  # docs/upgrade.md, before you start: vanilla servers proxy only with it.
  - name: peer-ca-file
    value: /etc/kubernetes/pki/ca.crt
  - name: shutdown-watch-termination-grace-period
    value: 5s
%s`, sec.Token, sec.CertificateKey, n.IP, apiPort, patchesDir, nodeRegistration(n), clusterName, version,
		lbIP, apiPort, registry, podSubnet, serviceNet, strings.Join(peerIPs, ", "), componentConfigs())
}

// componentConfigs are the kubelet's and kube-proxy's configurations,
// shared by every node through kubeadm's ConfigMaps.
func componentConfigs() string {
	return `---
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
cgroupDriver: cgroupfs
# These machines have cgroup v1 only.
failCgroupV1: false
# No CAP_SYS_RESOURCE: the kubelet's own default of -999 cannot be set.
oomScoreAdj: 0
---
apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
mode: iptables
clusterCIDR: ` + podSubnet + `
conntrack:
  # nf_conntrack_max is read-only here: leave it as it is.
  maxPerCore: 0
`
}

// joinConfig is a joining node's configuration: through the load
// balancer, the CA pinned by its hash.
func joinConfig(n node, sec secrets, caHash string, fail bool) string {
	cp := ""
	if fail {
		// The fault join-fails: a pin of no CA, and a short discovery timeout.
		caHash = "sha256:" + strings.Repeat("0", 64)
		cp = "timeouts:\n  discovery: 20s\n"
	}
	if n.ControlPlane {
		cp += fmt.Sprintf(`controlPlane:
  certificateKey: %q
  localAPIEndpoint:
    advertiseAddress: %s
    bindPort: %d
patches:
  directory: %s
`, sec.CertificateKey, n.IP, apiPort, patchesDir)
	}
	return fmt.Sprintf(`apiVersion: kubeadm.k8s.io/v1beta4
kind: JoinConfiguration
discovery:
  bootstrapToken:
    apiServerEndpoint: %s:%d
    token: %q
    caCertHashes: [%q]
%s%s`, lbIP, apiPort, sec.Token, caHash, cp, nodeRegistration(n))
}

// patchesDir is where each control-plane node keeps its kubeadm patches,
// as docs/kubeadm.md renders them.
const patchesDir = "/etc/kubernetes/mvp/patches"

// vanillaPatch is the patch of a vanilla server before the upgrade: only
// the address its peers reach it at (the peer network), no image of ours.
func vanillaPatch(n node) string {
	return fmt.Sprintf(`# The vanilla server's peer address: the peer network.
- op: add
  path: /spec/containers/0/command/-
  value: --peer-advertise-ip=%s
- op: add
  path: /spec/containers/0/command/-
  value: --peer-advertise-port=%d
`, n.PeerIP, apiPort)
}

// caCertHash is kubeadm's pin of a CA: sha256 of its public key info.
func caCertHash(caFile string) (string, error) {
	b, err := os.ReadFile(caFile)
	if err != nil {
		return "", err
	}
	block, _ := pem.Decode(b)
	if block == nil {
		return "", fmt.Errorf("%s: no PEM block", caFile)
	}
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		return "", fmt.Errorf("%s: %w", caFile, err)
	}
	sum := sha256.Sum256(cert.RawSubjectPublicKeyInfo)
	return "sha256:" + hex.EncodeToString(sum[:]), nil
}

// writeNodeFile writes a file into a node's /etc/kubernetes (its folder
// on the machine), returning the path inside the node.
func writeNodeFile(p plan, n node, name, content string) (string, error) {
	file := filepath.Join(p.nodeDir(n), "fs", "etc-kubernetes", "mvp", name)
	if err := os.MkdirAll(filepath.Dir(file), 0o755); err != nil {
		return "", err
	}
	if err := os.WriteFile(file, []byte(content), 0o600); err != nil {
		return "", err
	}
	return "/etc/kubernetes/mvp/" + name, nil
}

// adminConfig copies the first node's admin kubeconfig, pointed at the
// load balancer (it is already: the controlPlaneEndpoint).
func adminConfig(p plan, first node) error {
	b, err := os.ReadFile(filepath.Join(p.nodeDir(first), "fs", "etc-kubernetes", "admin.conf"))
	if err != nil {
		return err
	}
	if !strings.Contains(string(b), p.lbURL()) {
		return fmt.Errorf("admin.conf does not name the load balancer %s", p.lbURL())
	}
	return os.WriteFile(p.adminConf(), b, 0o600)
}
