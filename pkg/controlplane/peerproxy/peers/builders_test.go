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

package peers_test

import "github.com/mvp-apiserver/kube-apiserver/pkg/controlplane/peerproxy/peers/peerstest"

// The peer table's objects, built by peerstest.
var (
	t0           = peerstest.T0
	lease        = peerstest.Lease
	stoppedLease = peerstest.StoppedLease
	sv           = peerstest.StorageVersion
	entry        = peerstest.Entry
	jobsV1       = peerstest.JobsV1
	deployV1     = peerstest.DeployV1
	podsV1       = peerstest.PodsV1
	flowV1b3     = peerstest.FlowV1b3
)
