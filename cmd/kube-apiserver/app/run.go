package app

import (
	"context"
	"os"
	"strconv"

	"k8s.io/apiserver/pkg/reconcilers"
	genericapiserver "k8s.io/apiserver/pkg/server"
	"k8s.io/client-go/tools/cache"
	utilversion "k8s.io/component-base/version"
	"k8s.io/klog/v2"
	upstreamapp "k8s.io/kubernetes/cmd/kube-apiserver/app"
	upstreamoptions "k8s.io/kubernetes/cmd/kube-apiserver/app/options"

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
	if peer.Enabled {
		// The identity lease heartbeat and the peer endpoint records take the
		// address from here; both an IP and a port make it use ours.
		config.KubeAPIs.ControlPlane.Extra.PeerAdvertiseAddress = reconcilers.PeerAdvertiseAddress{
			PeerAdvertiseIP:   peer.AdvertiseIP.String(),
			PeerAdvertisePort: strconv.Itoa(peer.AdvertisePort),
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
	if err := addMixedVersionProxy(server.GenericAPIServer, config, peer); err != nil {
		return err
	}
	prepared, err := server.PrepareRun()
	if err != nil {
		return err
	}
	return prepared.Run(ctx)
}

// addMixedVersionProxy adds our post-start hooks. Placeholder until the
// registration controller lands.
func addMixedVersionProxy(s *genericapiserver.GenericAPIServer, config *upstreamapp.Config, peer *options.Config) error {
	return nil
}
