package proxy

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
