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

// Package peerstest builds what peer tables are made of (identity leases,
// StorageVersions and their entries) for the tests of every package that
// reads a peer table.
package peerstest

import (
	"time"

	apiserverinternalv1alpha1 "k8s.io/api/apiserverinternal/v1alpha1"
	coordinationv1 "k8s.io/api/coordination/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/mvp-apiserver/kube-apiserver/pkg/controlplane/peerproxy/peers"
)

// T0 is the tests' "now".
var T0 = time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)

// Resources the tests route.
var (
	JobsV1   = schema.GroupVersionResource{Group: "batch", Version: "v1", Resource: "jobs"}
	DeployV1 = schema.GroupVersionResource{Group: "apps", Version: "v1", Resource: "deployments"}
	PodsV1   = schema.GroupVersionResource{Version: "v1", Resource: "pods"}
	FlowV1b3 = schema.GroupVersionResource{Group: "flowcontrol.apiserver.k8s.io", Version: "v1beta3", Resource: "flowschemas"}
)

// Lease is server id's identity lease with peer address addr (none if
// empty), renewed renewedAgo before T0 (never if negative).
func Lease(id, addr string, renewedAgo time.Duration) *coordinationv1.Lease {
	l := &coordinationv1.Lease{ObjectMeta: metav1.ObjectMeta{Name: id, Namespace: metav1.NamespaceSystem}}
	if addr != "" {
		l.Annotations = map[string]string{peers.PeerAddressAnnotation: addr}
	}
	if renewedAgo >= 0 {
		rt := metav1.NewMicroTime(T0.Add(-renewedAgo))
		l.Spec.RenewTime = &rt
	}
	return l
}

// StoppedLease marks l stopped ago before T0.
func StoppedLease(l *coordinationv1.Lease, ago time.Duration) *coordinationv1.Lease {
	if l.Annotations == nil {
		l.Annotations = map[string]string{}
	}
	l.Annotations[peers.StoppedAtAnnotation] = T0.Add(-ago).Format(time.RFC3339Nano)
	return l
}

// StorageVersion is the StorageVersion name holding entries.
func StorageVersion(name string, entries ...peers.Entry) *apiserverinternalv1alpha1.StorageVersion {
	return &apiserverinternalv1alpha1.StorageVersion{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Status:     apiserverinternalv1alpha1.StorageVersionStatus{StorageVersions: entries},
	}
}

// Entry is server id's entry serving the versions served, encoding as the
// first of them.
func Entry(id string, served ...string) peers.Entry {
	return peers.Entry{APIServerID: id, EncodingVersion: served[0], DecodableVersions: served, ServedVersions: served}
}
