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

package options

import (
	"fmt"
	"strings"

	apiserverapi "k8s.io/apiserver/pkg/apis/apiserver"
	"k8s.io/apiserver/pkg/server/egressselector"
)

// FlagEgressSelectorConfigFile is upstream's flag for the egress selector.
const FlagEgressSelectorConfigFile = "egress-selector-config-file"

// ControlPlaneEgress reads the egress selector configuration file and
// describes its controlplane selection, the one every connection to a
// peer goes through: "" when there is none or it is Direct, else the
// proxy in words for operators ("HTTPConnect proxy at unix socket …").
//
// It also refuses what upstream's validation accepts but its egress
// selector then crashes on at start-up (k8s.io/apiserver v0.37.2): an
// HTTPConnect selection over TCP without tlsConfig, that is with an
// http:// URL. Any selection, not only controlplane, would crash the
// server, so every one is checked. Errors name the file and the field.
func ControlPlaneEgress(file string) (string, error) {
	if file == "" {
		return "", nil
	}
	cfg, err := egressselector.ReadEgressSelectorConfiguration(file)
	if err != nil {
		return "", fmt.Errorf("--%s=%s: %w", FlagEgressSelectorConfigFile, file, err)
	}
	if errs := egressselector.ValidateEgressSelectorConfiguration(cfg); len(errs) > 0 {
		return "", fmt.Errorf("--%s=%s: %w", FlagEgressSelectorConfigFile, file, errs.ToAggregate())
	}
	var controlPlane string
	for i, sel := range cfg.EgressSelections {
		c := sel.Connection
		if c.ProxyProtocol == apiserverapi.ProtocolHTTPConnect && c.Transport != nil && c.Transport.UDS == nil &&
			c.Transport.TCP != nil && c.Transport.TCP.TLSConfig == nil {
			return "", fmt.Errorf("--%s=%s: egressSelections[%d] (name %q): connection.transport.tcp.url %q: "+
				"an HTTPConnect proxy over TCP must be reached over TLS (an https:// URL with connection.transport.tcp.tlsConfig); "+
				"upstream's egress selector crashes on a plain http:// one. Reach a plain HTTP CONNECT proxy through connection.transport.uds instead",
				FlagEgressSelectorConfigFile, file, i, sel.Name, c.Transport.TCP.URL)
		}
		if strings.EqualFold(sel.Name, "controlplane") {
			controlPlane = describeEgress(c)
		}
	}
	return controlPlane, nil
}

// describeEgress names a validated selection's proxy; "" for Direct.
func describeEgress(c apiserverapi.Connection) string {
	if c.Transport == nil {
		return ""
	}
	var where string
	switch {
	case c.Transport.UDS != nil:
		where = "unix socket " + c.Transport.UDS.UDSName
	case c.Transport.TCP != nil:
		where = c.Transport.TCP.URL
	}
	switch c.ProxyProtocol {
	case apiserverapi.ProtocolHTTPConnect:
		return "HTTPConnect proxy at " + where
	case apiserverapi.ProtocolGRPC:
		return "konnectivity (GRPC) proxy at " + where
	default:
		return ""
	}
}
