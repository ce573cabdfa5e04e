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

// Package options gives the Mixed Version Proxy's flags their meaning.
//
// The flags themselves (--peer-ca-file, --peer-advertise-ip,
// --peer-advertise-port) are registered once by upstream's control-plane
// options; this package reads their values after parsing, applies the
// fallbacks (docs/registration.md), validates them and produces a plain Config that the
// rest of the fork consumes. It imports nothing else of ours.
package options

import (
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"time"
)

// Flag names, as upstream registers them.
const (
	FlagPeerCAFile          = "peer-ca-file"
	FlagPeerAdvertiseIP     = "peer-advertise-ip"
	FlagPeerAdvertisePort   = "peer-advertise-port"
	FlagProxyClientCertFile = "proxy-client-cert-file"
	FlagProxyClientKeyFile  = "proxy-client-key-file"
	FlagRuntimeConfig       = "runtime-config"

	FlagRequestHeaderClientCA    = "requestheader-client-ca-file"
	FlagRequestHeaderUsername    = "requestheader-username-headers"
	FlagRequestHeaderGroup       = "requestheader-group-headers"
	FlagRequestHeaderExtraPrefix = "requestheader-extra-headers-prefix"
)

// EnvRetention overrides how long a departed server's StorageVersion
// entries are kept (a Go duration, default 10m); meant for tests and
// operators who need a different window.
const EnvRetention = "MVP_PEER_RETENTION"

// StorageVersionGroupVersion is the API our registration writes to; the
// binary enables it whenever the gate is on.
const StorageVersionGroupVersion = "internal.apiserver.k8s.io/v1alpha1"

// PeerFlags are the raw values of the flags that configure the proxy, as
// parsed from the command line.
type PeerFlags struct {
	// GateEnabled is the UnknownVersionInteroperabilityProxy gate's value.
	GateEnabled bool

	CAFile        string
	AdvertiseIP   string
	AdvertisePort string

	ProxyClientCertFile string
	ProxyClientKeyFile  string

	// RuntimeConfig is --runtime-config as parsed (key -> value).
	RuntimeConfig map[string]string

	// RequestHeader is this server's --requestheader-* configuration.
	RequestHeader RequestHeader

	// Retention is the value of $MVP_PEER_RETENTION, empty when unset.
	Retention string
}

// RequestHeader is the --requestheader-* configuration: the CA that signs
// front proxies' client certificates and the headers identity travels in.
// Peers of one control plane share it, so the proxy sends a caller's
// identity under the first name of each list.
type RequestHeader struct {
	ClientCAFile string
	// UsernameHeaders, UIDHeaders, GroupHeaders and ExtraPrefixes are the
	// header names, in flag order.
	UsernameHeaders, UIDHeaders, GroupHeaders, ExtraPrefixes []string
}

// Addresses are the upstream serving flags the peer address falls back to.
type Addresses struct {
	// AdvertiseAddress is --advertise-address, nil when not given.
	AdvertiseAddress net.IP
	// BindAddress is --bind-address (0.0.0.0 by default).
	BindAddress net.IP
	// SecurePort is --secure-port.
	SecurePort int
	// HostIP returns the IP of the host's default interface.
	HostIP func() (net.IP, error)
}

// Config is the resolved, validated configuration of the proxy.
type Config struct {
	// Enabled: the gate is on. The server registers itself so peers can
	// reach it, whether or not it proxies.
	Enabled bool
	// ProxyEnabled: the gate is on and --peer-ca-file is set, so this
	// server forwards requests it cannot serve.
	ProxyEnabled bool

	// CAFile is --peer-ca-file, checked at start-up and reloaded by the
	// proxy when it changes.
	CAFile string

	ProxyClientCertFile string
	ProxyClientKeyFile  string
	// RequestHeader names the headers a caller's identity travels in.
	RequestHeader RequestHeader

	// AdvertiseIP and AdvertisePort are where peers reach this server.
	AdvertiseIP   net.IP
	AdvertisePort int

	// Retention is how long departed servers' entries are kept; zero
	// means the default.
	Retention time.Duration

	// EgressProxy describes the proxy of the egress selector's
	// controlplane selection, through which every connection to a peer
	// is dialled; empty when peers are dialled directly.
	EgressProxy string
}

// AdvertiseAddress is AdvertiseIP:AdvertisePort, as written on the identity lease.
func (c *Config) AdvertiseAddress() string {
	if c.AdvertiseIP == nil {
		return ""
	}
	return net.JoinHostPort(c.AdvertiseIP.String(), strconv.Itoa(c.AdvertisePort))
}

// Validate checks the flags before anything is started. Every error names
// the flag it is about.
func Validate(f PeerFlags) []error {
	var errs []error
	if !f.GateEnabled {
		for _, set := range []struct{ name, value string }{
			{FlagPeerCAFile, f.CAFile},
			{FlagPeerAdvertiseIP, f.AdvertiseIP},
			{FlagPeerAdvertisePort, f.AdvertisePort},
		} {
			if set.value != "" {
				errs = append(errs, fmt.Errorf("--%s requires the UnknownVersionInteroperabilityProxy feature gate to be enabled", set.name))
			}
		}
		return errs
	}

	if f.AdvertiseIP != "" {
		if _, err := parseAdvertiseIP(f.AdvertiseIP); err != nil {
			errs = append(errs, err)
		}
	}
	if f.AdvertisePort != "" {
		if _, err := parsePort(f.AdvertisePort); err != nil {
			errs = append(errs, err)
		}
	}
	if f.CAFile != "" {
		if _, err := readCABundle(f.CAFile); err != nil {
			errs = append(errs, err)
		}
		if f.ProxyClientCertFile == "" || f.ProxyClientKeyFile == "" {
			errs = append(errs, fmt.Errorf("--%s enables proxying to peers, which requires --%s and --%s (the client certificate the proxy presents to peers)",
				FlagPeerCAFile, FlagProxyClientCertFile, FlagProxyClientKeyFile))
		}
		errs = append(errs, validateRequestHeader(f.RequestHeader)...)
	}
	if f.Retention != "" {
		if _, err := parseRetention(f.Retention); err != nil {
			errs = append(errs, err)
		}
	}
	if key, ok := storageVersionDisabled(f.RuntimeConfig); ok {
		errs = append(errs, fmt.Errorf("--%s=%s=false conflicts with the UnknownVersionInteroperabilityProxy feature gate, which needs %s to register this server's resources",
			FlagRuntimeConfig, key, StorageVersionGroupVersion))
	}
	return errs
}

// Resolve turns validated flags into a Config. The peer address falls back
// to --advertise-address, then a specific --bind-address, then the host's
// default interface; the port falls back to --secure-port.
func Resolve(f PeerFlags, a Addresses) (*Config, error) {
	if errs := Validate(f); len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	c := &Config{
		Enabled:             f.GateEnabled,
		ProxyEnabled:        f.GateEnabled && f.CAFile != "",
		CAFile:              f.CAFile,
		ProxyClientCertFile: f.ProxyClientCertFile,
		ProxyClientKeyFile:  f.ProxyClientKeyFile,
		RequestHeader:       f.RequestHeader,
	}
	if !c.Enabled {
		return c, nil
	}

	if f.Retention != "" {
		c.Retention, _ = parseRetention(f.Retention) // validated above
	}
	ip, err := resolveIP(f.AdvertiseIP, a)
	if err != nil {
		return nil, err
	}
	c.AdvertiseIP = ip
	c.AdvertisePort = a.SecurePort
	if f.AdvertisePort != "" {
		c.AdvertisePort, _ = parsePort(f.AdvertisePort) // validated above
	}
	if c.AdvertisePort <= 0 {
		return nil, fmt.Errorf("--%s is not set and --secure-port is %d: peers have no port to reach this server on", FlagPeerAdvertisePort, a.SecurePort)
	}
	return c, nil
}

func resolveIP(flag string, a Addresses) (net.IP, error) {
	switch {
	case flag != "":
		return parseAdvertiseIP(flag)
	case a.AdvertiseAddress != nil && !a.AdvertiseAddress.IsUnspecified():
		return a.AdvertiseAddress, nil
	case a.BindAddress != nil && !a.BindAddress.IsUnspecified():
		return a.BindAddress, nil
	}
	if a.HostIP == nil {
		return nil, fmt.Errorf("--%s is not set and no default interface is known: set --%s", FlagPeerAdvertiseIP, FlagPeerAdvertiseIP)
	}
	ip, err := a.HostIP()
	if err != nil {
		return nil, fmt.Errorf("--%s is not set and the host's default interface has no usable IP (%v): set --%s or --advertise-address", FlagPeerAdvertiseIP, err, FlagPeerAdvertiseIP)
	}
	return ip, nil
}

func parseAdvertiseIP(s string) (net.IP, error) {
	ip := net.ParseIP(strings.TrimSpace(s))
	if ip == nil {
		return nil, fmt.Errorf("--%s=%s is not a valid IP address", FlagPeerAdvertiseIP, s)
	}
	if ip.IsUnspecified() {
		return nil, fmt.Errorf("--%s=%s is unspecified: peers need an address they can dial", FlagPeerAdvertiseIP, s)
	}
	return ip, nil
}

func parsePort(s string) (int, error) {
	p, err := strconv.Atoi(strings.TrimSpace(s))
	if err != nil || p < 1 || p > 65535 {
		return 0, fmt.Errorf("--%s=%s is not a valid port: must be a number from 1 to 65535", FlagPeerAdvertisePort, s)
	}
	return p, nil
}

func parseRetention(s string) (time.Duration, error) {
	d, err := time.ParseDuration(strings.TrimSpace(s))
	if err != nil || d < time.Second {
		return 0, fmt.Errorf("$%s=%s is not a valid retention: must be a duration of at least 1s, such as 10m", EnvRetention, s)
	}
	return d, nil
}

// validateRequestHeader: proxying sends each caller's identity as
// front-proxy headers, which needs a name for each (the UID header is
// optional: kubeadm sets none, and peers without one would not read it),
// and peers must trust the front-proxy CA.
func validateRequestHeader(r RequestHeader) []error {
	var errs []error
	for _, n := range []struct {
		flag  string
		names []string
	}{
		{FlagRequestHeaderUsername, r.UsernameHeaders},
		{FlagRequestHeaderGroup, r.GroupHeaders},
		{FlagRequestHeaderExtraPrefix, r.ExtraPrefixes},
	} {
		if len(n.names) == 0 || strings.TrimSpace(n.names[0]) == "" {
			errs = append(errs, fmt.Errorf("--%s enables proxying to peers, which sends each caller's identity in front-proxy headers named by --%s: it is not set (kubeadm sets X-Remote-User, X-Remote-Group and X-Remote-Extra-)",
				FlagPeerCAFile, n.flag))
		}
	}
	if r.ClientCAFile == "" {
		errs = append(errs, fmt.Errorf("--%s enables proxying to peers, which trust the forwarded identity only from a client certificate signed by --%s: it is not set",
			FlagPeerCAFile, FlagRequestHeaderClientCA))
	}
	return errs
}

// readCABundle reads the file and checks that it holds at least one PEM
// certificate and nothing that is not one.
func readCABundle(path string) ([]byte, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("--%s=%s cannot be read: %w", FlagPeerCAFile, path, err)
	}
	rest := data
	n := 0
	for {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			break
		}
		if block.Type != "CERTIFICATE" {
			return nil, fmt.Errorf("--%s=%s holds a PEM block of type %s; only CERTIFICATE blocks are allowed", FlagPeerCAFile, path, block.Type)
		}
		if _, err := x509.ParseCertificate(block.Bytes); err != nil {
			return nil, fmt.Errorf("--%s=%s holds a certificate that does not parse: %w", FlagPeerCAFile, path, err)
		}
		n++
	}
	if n == 0 {
		return nil, fmt.Errorf("--%s=%s holds no PEM certificate", FlagPeerCAFile, path)
	}
	if len(strings.TrimSpace(string(rest))) != 0 {
		return nil, fmt.Errorf("--%s=%s has data after its last PEM certificate that is not PEM", FlagPeerCAFile, path)
	}
	return data, nil
}

// storageVersionDisabled reports the --runtime-config key that explicitly
// turns our StorageVersion API off, if any.
func storageVersionDisabled(rc map[string]string) (string, bool) {
	for _, key := range []string{StorageVersionGroupVersion, StorageVersionGroupVersion + "/storageversions"} {
		if v, ok := rc[key]; ok && strings.EqualFold(strings.TrimSpace(v), "false") {
			return key, true
		}
	}
	return "", false
}

// EnableStorageVersionAPI adds the runtime-config entry our registration
// needs, leaving every other entry as the user gave it.
func EnableStorageVersionAPI(rc map[string]string) {
	if _, ok := rc[StorageVersionGroupVersion]; !ok {
		rc[StorageVersionGroupVersion] = "true"
	}
}
