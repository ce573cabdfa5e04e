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

package app

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"strconv"

	apiextensionsapiserver "k8s.io/apiextensions-apiserver/pkg/apiserver"
	"k8s.io/apimachinery/pkg/runtime"
	genericfeatures "k8s.io/apiserver/pkg/features"
	"k8s.io/apiserver/pkg/reconcilers"
	genericapiserver "k8s.io/apiserver/pkg/server"
	"k8s.io/apiserver/pkg/server/egressselector"
	utilfeature "k8s.io/apiserver/pkg/util/feature"
	"k8s.io/client-go/tools/cache"
	utilversion "k8s.io/component-base/version"
	"k8s.io/klog/v2"
	aggregatorscheme "k8s.io/kube-aggregator/pkg/apiserver/scheme"
	upstreamapp "k8s.io/kubernetes/cmd/kube-apiserver/app"
	upstreamoptions "k8s.io/kubernetes/cmd/kube-apiserver/app/options"
	"k8s.io/kubernetes/pkg/api/legacyscheme"
	"k8s.io/utils/clock"

	"github.com/mvp-apiserver/kube-apiserver/pkg/controlplane/peerproxy"
	"github.com/mvp-apiserver/kube-apiserver/pkg/controlplane/peerproxy/peerclient"
	"github.com/mvp-apiserver/kube-apiserver/pkg/controlplane/peerproxy/registration"
	"github.com/mvp-apiserver/kube-apiserver/pkg/options"
)

// Run builds upstream's server chain with upstream's own proxy kept out,
// adds ours, and serves until ctx ends.
func Run(ctx context.Context, opts upstreamoptions.CompletedOptions, peer *options.Config) error {
	klog.InfoS("Starting kube-apiserver", "version", utilversion.Get().GitVersion, "mixedVersionProxy", peer.Enabled, "peerProxying", peer.ProxyEnabled)
	klog.InfoS("Golang settings", "GOGC", os.Getenv("GOGC"), "GOMAXPROCS", os.Getenv("GOMAXPROCS"), "GOTRACEBACK", os.Getenv("GOTRACEBACK"))

	if opts.InformerName == nil {
		name, err := cache.NewInformerName("kube-apiserver")
		if err != nil {
			return err
		}
		opts.InformerName = name
	}
	if peer.Enabled && !peer.ProxyEnabled {
		klog.InfoS("WARNING: UnknownVersionInteroperabilityProxy is enabled without --peer-ca-file: this server registers itself so peers can proxy to it, but it does not proxy requests it cannot serve")
	}

	// Upstream builds its own peer proxy only when PeerCAFile is set; ours
	// holds its own copy of the file, so clearing it keeps upstream's out.
	opts.PeerCAFile = ""
	config, err := upstreamapp.NewConfig(opts)
	if err != nil {
		return err
	}
	var mvp *peerproxy.MixedVersionProxy
	if peer.Enabled {
		if mvp, err = wireMixedVersionProxy(config, peer); err != nil {
			return err
		}
	}

	completed, err := config.Complete()
	if err != nil {
		return err
	}
	server, err := upstreamapp.CreateServerChain(completed)
	if err != nil {
		return err
	}
	if mvp != nil {
		if err := mvp.Install(server.GenericAPIServer); err != nil {
			return err
		}
	}
	prepared, err := server.PrepareRun()
	if err != nil {
		return err
	}
	return prepared.Run(ctx)
}

// wireMixedVersionProxy builds our proxy and wires it into upstream's
// configuration: our peer address, upstream's lease controller and peer
// endpoint reconciler kept from deleting what vanilla peers read, and our
// filters in the aggregator's handler chain.
func wireMixedVersionProxy(config *upstreamapp.Config, peer *options.Config) (*peerproxy.MixedVersionProxy, error) {
	// The identity lease heartbeat and the peer endpoint records take the
	// address from here; both an IP and a port make it use ours.
	config.KubeAPIs.ControlPlane.Extra.PeerAdvertiseAddress = reconcilers.PeerAdvertiseAddress{
		PeerAdvertiseIP:   peer.AdvertiseIP.String(),
		PeerAdvertisePort: strconv.Itoa(peer.AdvertisePort),
	}
	// Upstream's lease controller, built in CreateServerChain from this
	// config, deletes this server's identity lease at start and stop;
	// vanilla peers would then forget this server (registration.KeepIdentityLease).
	generic := config.KubeAPIs.ControlPlane.Generic
	generic.LoopbackClientConfig.Wrap(registration.KeepIdentityLease(generic.APIServerID, peer.Retention, clock.RealClock{}))
	// Its peer endpoint reconciler deletes the peer address record at a
	// stop; vanilla peers resolve this server by it (registration.KeepAddressRecord).
	if extra := &config.KubeAPIs.ControlPlane.Extra; extra.PeerEndpointLeaseReconciler != nil {
		extra.PeerEndpointLeaseReconciler = registration.KeepAddressRecord(extra.PeerEndpointLeaseReconciler)
	}
	mvp, err := newMixedVersionProxy(config, peer)
	if err != nil {
		return nil, err
	}
	// Innermost in the aggregator's chain: after authentication, audit,
	// impersonation, priority and fairness and authorization, with
	// RequestInfo and the user in the context. Only the aggregator's chain
	// runs for external requests. Merged discovery answers first
	// (discovery.WithMergedDiscovery); the proxy filter then routes the rest
	// (proxy.WithPeerProxy).
	build := config.Aggregator.GenericConfig.BuildHandlerChainFunc
	config.Aggregator.GenericConfig.BuildHandlerChainFunc = func(h http.Handler, c *genericapiserver.Config) http.Handler {
		return build(mvp.WithMergedDiscovery(mvp.WithPeerProxy(h)), c)
	}
	return mvp, nil
}

// newMixedVersionProxy builds our proxy from upstream's configuration.
func newMixedVersionProxy(config *upstreamapp.Config, peer *options.Config) (*peerproxy.MixedVersionProxy, error) {
	generic := config.KubeAPIs.ControlPlane.Generic
	gates := utilfeature.DefaultFeatureGate
	var proxy *peerclient.Config
	if peer.ProxyEnabled {
		proxy = &peerclient.Config{
			CAFile:         peer.CAFile,
			ClientCertFile: peer.ProxyClientCertFile,
			ClientKeyFile:  peer.ProxyClientKeyFile,
			Headers: peerclient.FrontProxyHeaders{
				User:        peer.RequestHeader.UsernameHeaders,
				UID:         peer.RequestHeader.UIDHeaders,
				Group:       peer.RequestHeader.GroupHeaders,
				ExtraPrefix: peer.RequestHeader.ExtraPrefixes,
			},
		}
		if peer.EgressProxy != "" {
			// Peers are part of the control plane: every connection to one
			// goes through the controlplane selection's proxy, never around it.
			if generic.EgressSelector == nil {
				return nil, fmt.Errorf("--egress-selector-config-file selects a controlplane proxy (%s), but no egress selector was built from it", peer.EgressProxy)
			}
			dial, err := generic.EgressSelector.Lookup(egressselector.ControlPlane.AsNetworkContext())
			if err != nil {
				return nil, fmt.Errorf("egress selector, controlplane: %w", err)
			}
			if dial == nil {
				return nil, fmt.Errorf("the egress selector has no dialer for its controlplane selection (%s)", peer.EgressProxy)
			}
			proxy.DialContext, proxy.EgressProxy = dial, peer.EgressProxy
			klog.InfoS("Connections to peer kube-apiservers go through the egress selector's controlplane selection", "proxy", peer.EgressProxy)
		}
	}
	return peerproxy.New(peerproxy.Config{
		ServerID:   generic.APIServerID,
		Loopback:   generic.LoopbackClientConfig,
		Schemes:    []*runtime.Scheme{legacyscheme.Scheme, apiextensionsapiserver.Scheme, aggregatorscheme.Scheme},
		Retention:  peer.Retention,
		Proxy:      proxy,
		Serializer: legacyscheme.Codecs,
		Version:    utilversion.Get().GitVersion,
		UpstreamRegistration: gates.Enabled(genericfeatures.StorageVersionAPI) &&
			gates.Enabled(genericfeatures.APIServerIdentity),
		PeerAddress: peerAddress(config, generic.APIServerID),
	})
}

// peerAddress reads this server's peer address record through upstream's
// peer endpoint reconciler (nil when there is none).
func peerAddress(config *upstreamapp.Config, serverID string) func() (string, error) {
	r := config.KubeAPIs.ControlPlane.Extra.PeerEndpointLeaseReconciler
	if r == nil {
		return nil
	}
	return func() (string, error) { return r.GetEndpoint(serverID) }
}
