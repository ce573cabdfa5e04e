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

package peers

import (
	"fmt"
	"time"
)

// The identity lease as this proxy reads and writes it. Upstream's lease
// controller creates and renews it; a server of ours marks its stop on it
// instead of deleting it (registration.KeepIdentityLease), so vanilla peers
// keep knowing the server while it restarts.
const (
	// IdentityLeaseSelector selects kube-apiservers' identity leases.
	IdentityLeaseSelector = "apiserver.kubernetes.io/identity=kube-apiserver"
	// PeerAddressAnnotation holds host:port where peers reach a server.
	PeerAddressAnnotation = "kubernetes.io/peer-advertise-address"
	// StoppedAtAnnotation is set on a server's identity lease when it stops
	// (RFC 3339, that server's clock). The lease is not live while its
	// renewal is not later than this; the next process's first renewal is.
	StoppedAtAnnotation = "mvp-apiserver.github.io/stopped-at"
)

// StoppedAt is when a lease's server recorded its stop; zero if never.
func StoppedAt(annotations map[string]string) time.Time {
	t, err := time.Parse(time.RFC3339Nano, annotations[StoppedAtAnnotation])
	if err != nil {
		return time.Time{}
	}
	return t
}

// StopPatch is the merge patch that records a stop at now on a lease and
// shortens its duration to retention, so that upstream's lease garbage
// collector removes it once retention has passed with no renewal.
func StopPatch(now time.Time, retention time.Duration) []byte {
	return fmt.Appendf(nil, `{"metadata":{"annotations":{%q:%q}},"spec":{"leaseDurationSeconds":%d}}`,
		StoppedAtAnnotation, now.UTC().Format(time.RFC3339Nano), int(retention.Seconds()))
}
