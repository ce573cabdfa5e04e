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
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
)

// ServerOptions describe one kube-apiserver of a cluster.
type ServerOptions struct {
	// Name is the server's hostname inside its UTS namespace, and so the
	// source of its apiserver identity. Also names its files.
	Name string
	// Binary defaults to our kube-apiserver in the cluster's bin dir.
	Binary string
	// IP is the loopback address it binds and advertises (127.0.0.0/8).
	IP string
	// Host, when set, runs the server on a host of a Network: it binds and
	// advertises the host's client address (IP is set from it) and gives
	// its peer address as --peer-advertise-ip.
	Host *Host
	// Port is the secure port; 0 picks a free one (6443 on a Host).
	Port int
	// Gate sets UnknownVersionInteroperabilityProxy; nil leaves the default.
	Gate *bool
	// PeerCAFile defaults to the cluster CA when the gate is on; set
	// NoPeerCA to run without one.
	PeerCAFile string
	NoPeerCA   bool
	// Args are appended last, so they override the defaults above.
	Args []string
	// Env is added to the server's environment (KEY=value).
	Env []string
}

// Server is a running kube-apiserver: one the harness started, or an
// existing one attached through its kubeconfig (then Process is nil).
type Server struct {
	*Process
	Opts    ServerOptions
	URL     string
	cluster *Cluster
	// attached: the kubeconfig and client configuration of an existing server.
	kubeconfig string
	rest       *rest.Config
}

// Attach describes an existing kube-apiserver reached with kubeconfig; it
// starts nothing and can stop nothing.
func Attach(name, kubeconfig string) (*Server, error) {
	cfg, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	if err != nil {
		return nil, fmt.Errorf("loading %s: %w", kubeconfig, err)
	}
	cfg.QPS, cfg.Burst = -1, -1
	return &Server{Opts: ServerOptions{Name: name}, URL: strings.TrimRight(cfg.Host, "/"), kubeconfig: kubeconfig, rest: cfg}, nil
}

// Attached reports whether the harness did not start s.
func (s *Server) Attached() bool { return s.rest != nil }

// Kubeconfig returns a kubeconfig for s: the one it was attached with, or
// an admin kubeconfig written under dir.
func (s *Server) Kubeconfig(dir string) (string, error) {
	if s.Attached() {
		return s.kubeconfig, nil
	}
	path := filepath.Join(dir, s.Opts.Name+".kubeconfig")
	return path, s.WriteKubeconfig(path)
}

// On is a helper for ServerOptions.Gate.
func On(b bool) *bool { return &b }

// args builds the server's command line: a complete, secure kube-apiserver
// on loopback, sharing the cluster's etcd and PKI.
func (c *Cluster) args(o ServerOptions, port int) ([]string, error) {
	ips := []net.IP{net.ParseIP(o.IP)}
	if o.Host != nil && o.Host.PeerIP != "" {
		ips = append(ips, net.ParseIP(o.Host.PeerIP))
	}
	certFile, keyFile, err := c.PKI.IssueServing(o.Name, ips...)
	if err != nil {
		return nil, err
	}
	dir := filepath.Join(c.Dir, o.Name)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	a := []string{
		"--etcd-servers=" + c.Etcd.URL,
		"--bind-address=" + bindAddress(o),
		"--advertise-address=" + o.IP,
		"--secure-port=" + itoa(port),
		"--cert-dir=" + dir,
		"--tls-cert-file=" + certFile,
		"--tls-private-key-file=" + keyFile,
		"--client-ca-file=" + c.PKI.CAFile,
		"--service-account-key-file=" + c.PKI.SAKey,
		"--service-account-signing-key-file=" + c.PKI.SAKey,
		"--service-account-issuer=https://kubernetes.default.svc",
		"--service-cluster-ip-range=10.96.0.0/16",
		"--authorization-mode=RBAC",
		"--requestheader-client-ca-file=" + c.PKI.FrontProxyCAFile,
		"--requestheader-allowed-names=front-proxy-client",
		"--requestheader-username-headers=X-Remote-User",
		"--requestheader-uid-headers=X-Remote-Uid",
		"--requestheader-group-headers=X-Remote-Group",
		"--requestheader-extra-headers-prefix=X-Remote-Extra-",
		"--proxy-client-cert-file=" + c.PKI.ProxyClientCert,
		"--proxy-client-key-file=" + c.PKI.ProxyClientKey,
		// The kubernetes Service's endpoints may not be loopback addresses.
		"--endpoint-reconciler-type=none",
		"--profiling=true",
	}
	return append(append(a, c.peerArgs(o)...), o.Args...), nil
}

// peerArgs are the gate and the peer flags o asks for.
func (c *Cluster) peerArgs(o ServerOptions) []string {
	var a []string
	if o.Host != nil && o.Host.PeerIP != "" {
		a = append(a, "--peer-advertise-ip="+o.Host.PeerIP)
	}
	if o.Gate != nil {
		a = append(a, fmt.Sprintf("--feature-gates=UnknownVersionInteroperabilityProxy=%t", *o.Gate))
	}
	gateOn := o.Gate == nil || *o.Gate
	switch {
	case o.PeerCAFile != "":
		a = append(a, "--peer-ca-file="+o.PeerCAFile)
	case gateOn && !o.NoPeerCA:
		a = append(a, "--peer-ca-file="+c.PKI.CAFile)
	}
	return a
}

// bindAddress is o's IP on loopback; on a Host every address of the host,
// client and peer network alike, as a control plane node binds.
func bindAddress(o ServerOptions) string {
	if o.Host != nil {
		return "0.0.0.0"
	}
	return o.IP
}

// StartServer starts a kube-apiserver and waits until /readyz answers ok.
func (c *Cluster) StartServer(ctx context.Context, o ServerOptions) (*Server, error) {
	s, err := c.LaunchServer(o)
	if err != nil {
		return nil, err
	}
	if err := s.WaitReady(ctx, 2*time.Minute); err != nil {
		s.Kill()
		return nil, err
	}
	return s, nil
}

// LaunchServer starts a kube-apiserver without waiting for it.
func (c *Cluster) LaunchServer(o ServerOptions) (*Server, error) {
	if o.Binary == "" {
		o.Binary = filepath.Join(c.BinDir, "kube-apiserver")
	}
	if o.Host != nil {
		o.IP = o.Host.ClientIP
		if o.Port == 0 {
			o.Port = 6443
		}
	}
	port := o.Port
	if port == 0 {
		var err error
		if port, err = freePort(o.IP); err != nil {
			return nil, err
		}
	}
	o.Port = port
	args, err := c.args(o, port)
	if err != nil {
		return nil, err
	}
	argv := append([]string{o.Binary}, args...)
	if o.Host != nil {
		argv = o.Host.Wrap(argv)
	}
	p, err := startProcess(o.Name, filepath.Join(c.Dir, o.Name+".log"), o.Name, o.Env, argv)
	if err != nil {
		return nil, err
	}
	s := &Server{Process: p, Opts: o, URL: "https://" + net.JoinHostPort(o.IP, itoa(port)), cluster: c}
	c.mu.Lock()
	c.servers = append(c.servers, s)
	c.mu.Unlock()
	return s, nil
}

// Restart starts the server again with the same options and port.
func (s *Server) Restart(ctx context.Context) (*Server, error) {
	if !s.Exited() {
		if err := s.Stop(time.Minute); err != nil {
			return nil, err
		}
	}
	return s.cluster.StartServer(ctx, s.Opts)
}

// WaitReady polls /readyz until it answers ok, or the process exits.
func (s *Server) WaitReady(ctx context.Context, timeout time.Duration) error {
	client := s.HTTPClient()
	return poll(ctx, 250*time.Millisecond, timeout, func() (bool, error) {
		if s.Exited() {
			return false, fmt.Errorf("%s exited: %v\n%s", s.Name, s.ExitError(), s.LogTail(30))
		}
		resp, err := client.Get(s.URL + "/readyz")
		if err != nil {
			return false, err
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp.StatusCode == http.StatusOK, fmt.Errorf("%s /readyz %d: %s", s.Name, resp.StatusCode, body)
	})
}

// Freeze stops the process (SIGSTOP): its sockets stay open, nothing answers.
func (s *Server) Freeze() error { return s.Signal(syscall.SIGSTOP) }

// Thaw resumes a frozen process.
func (s *Server) Thaw() error { return s.Signal(syscall.SIGCONT) }

// LogTail returns the last n lines of the server's log.
func (s *Server) LogTail(n int) string {
	data, _ := os.ReadFile(s.LogPath)
	lines := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// RESTConfig is an admin (system:masters) client configuration.
func (s *Server) RESTConfig() *rest.Config {
	if s.Attached() {
		return rest.CopyConfig(s.rest)
	}
	return s.cluster.restConfig(s.URL, s.cluster.PKI.AdminCert, s.cluster.PKI.AdminKey)
}

// Client is an admin clientset.
func (s *Server) Client() kubernetes.Interface {
	return kubernetes.NewForConfigOrDie(s.RESTConfig())
}

// HTTPClient is a raw admin HTTP client for this server.
func (s *Server) HTTPClient() *http.Client {
	if s.Attached() {
		c, err := rest.HTTPClientFor(s.rest)
		if err != nil {
			panic(err)
		}
		c.Timeout = 60 * time.Second
		return c
	}
	cert, err := tls.LoadX509KeyPair(s.cluster.PKI.AdminCert, s.cluster.PKI.AdminKey)
	if err != nil {
		panic(err)
	}
	pool := x509.NewCertPool()
	ca, _ := os.ReadFile(s.cluster.PKI.CAFile)
	pool.AppendCertsFromPEM(ca)
	return &http.Client{
		Timeout: 60 * time.Second,
		Transport: &http.Transport{
			TLSClientConfig:   &tls.Config{RootCAs: pool, Certificates: []tls.Certificate{cert}},
			ForceAttemptHTTP2: true,
			DialContext:       s.cluster.Dial,
		},
	}
}

// ID is the server's apiserver identity, read from its identity lease.
func (s *Server) ID(ctx context.Context) (string, error) {
	var id string
	err := poll(ctx, 250*time.Millisecond, time.Minute, func() (bool, error) {
		leases, err := s.Client().CoordinationV1().Leases(metav1.NamespaceSystem).List(ctx, metav1.ListOptions{
			LabelSelector: "apiserver.kubernetes.io/identity=kube-apiserver,kubernetes.io/hostname=" + s.Opts.Name,
		})
		if err != nil {
			return false, err
		}
		if len(leases.Items) != 1 {
			return false, fmt.Errorf("%d identity leases for hostname %s", len(leases.Items), s.Opts.Name)
		}
		id = leases.Items[0].Name
		return true, nil
	})
	return id, err
}

// WriteKubeconfig writes an admin kubeconfig for this server to path.
func (s *Server) WriteKubeconfig(path string) error {
	cfg := clientcmdapi.NewConfig()
	cfg.Clusters[s.Name] = &clientcmdapi.Cluster{Server: s.URL, CertificateAuthority: s.cluster.PKI.CAFile}
	cfg.AuthInfos["admin"] = &clientcmdapi.AuthInfo{ClientCertificate: s.cluster.PKI.AdminCert, ClientKey: s.cluster.PKI.AdminKey}
	cfg.Contexts[s.Name] = &clientcmdapi.Context{Cluster: s.Name, AuthInfo: "admin"}
	cfg.CurrentContext = s.Name
	return clientcmd.WriteToFile(*cfg, path)
}
