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

	"github.com/spf13/pflag"
)

// usage is our meaning of each peer flag. The flags stay registered once,
// by upstream; only their help text is ours.
var usage = map[string]string{
	FlagPeerCAFile: "If set and the UnknownVersionInteroperabilityProxy feature gate is enabled, this server forwards " +
		"requests for resources it does not serve to a peer kube-apiserver that does, and verifies the peer's serving " +
		"certificate with this CA bundle (PEM). Requires --proxy-client-cert-file and --proxy-client-key-file. " +
		"Without it the server does not proxy, but still registers itself so that peers can proxy to it.",
	FlagPeerAdvertiseIP: "If the UnknownVersionInteroperabilityProxy feature gate is enabled, the IP peer kube-apiservers " +
		"use to reach this server when they forward a request to it. Defaults to --advertise-address, then to " +
		"--bind-address when it is a specific address, then to the host's default interface.",
	FlagPeerAdvertisePort: "If the UnknownVersionInteroperabilityProxy feature gate is enabled, the port peer kube-apiservers " +
		"use to reach this server when they forward a request to it (1-65535). Defaults to --secure-port.",
}

// SetHelp gives the peer flags in fs their help text. It fails if a flag
// is missing, which would mean upstream renamed or dropped it.
func SetHelp(fs *pflag.FlagSet) error {
	for name, text := range usage {
		f := fs.Lookup(name)
		if f == nil {
			return fmt.Errorf("flag --%s is not registered by the upstream options", name)
		}
		f.Usage = text
	}
	return nil
}
