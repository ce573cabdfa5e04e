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
	"sync"

	"k8s.io/component-base/metrics"
	"k8s.io/component-base/metrics/legacyregistry"

	"github.com/mvp-apiserver/kube-apiserver/pkg/controlplane/peerproxy/discovery"
	"github.com/mvp-apiserver/kube-apiserver/pkg/controlplane/peerproxy/peertable"
	"github.com/mvp-apiserver/kube-apiserver/pkg/controlplane/peerproxy/proxy"
	"github.com/mvp-apiserver/kube-apiserver/pkg/controlplane/peerproxy/registration"
)

var registerOnce sync.Once

// RegisterMetrics registers every piece's metrics with the legacy registry
// (served on /metrics). Safe to call more than once. Upstream's own peer
// proxy series (apiserver_rerouted_request_total and the others) are fed,
// not registered: the generic server registers them whether or not a proxy
// runs.
func RegisterMetrics() {
	registerOnce.Do(func() {
		for _, ms := range [][]metrics.Registerable{peertable.Metrics(), proxy.Metrics(), discovery.Metrics(), registration.Metrics()} {
			legacyregistry.MustRegister(ms...)
		}
	})
}
