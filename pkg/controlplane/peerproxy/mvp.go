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

// Package peerproxy wires the fork's Mixed Version Proxy into a
// kube-apiserver: the peer table (peertable, over the leaf peers), the
// connections to peers (peerclient), the routing filter (proxy), merged
// discovery (discovery) and this server's registration (registration). It
// builds them, starts them in post-start hooks, and serves
// /debug/peerproxy; the pieces import none of each other, only the leaves
// peers, peerclient and controller (docs/design.md).
package peerproxy

import (
	"context"
	"fmt"
	"net/http"
	"time"

	apiextensionsclient "k8s.io/apiextensions-apiserver/pkg/client/clientset/clientset"
	apiextensionsinformers "k8s.io/apiextensions-apiserver/pkg/client/informers/externalversions"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/wait"
	genericapiserver "k8s.io/apiserver/pkg/server"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/klog/v2"
	aggregatorclient "k8s.io/kube-aggregator/pkg/client/clientset_generated/clientset"
	aggregatorinformers "k8s.io/kube-aggregator/pkg/client/informers/externalversions"
	"k8s.io/utils/clock"

	"github.com/mvp-apiserver/kube-apiserver/pkg/controlplane/peerproxy/discovery"
	"github.com/mvp-apiserver/kube-apiserver/pkg/controlplane/peerproxy/peerclient"
	"github.com/mvp-apiserver/kube-apiserver/pkg/controlplane/peerproxy/peers"
	"github.com/mvp-apiserver/kube-apiserver/pkg/controlplane/peerproxy/peertable"
	"github.com/mvp-apiserver/kube-apiserver/pkg/controlplane/peerproxy/proxy"
	"github.com/mvp-apiserver/kube-apiserver/pkg/controlplane/peerproxy/registration"
)

const (
	// discoveryWorkers fetch peers' discovery concurrently, so one slow
	// peer holds up no other.
	discoveryWorkers = 4
	// loopbackCallTimeout bounds each call the controllers make to this
	// server, so a hung call never holds a worker. Informers' watches
	// use a client without it.
	loopbackCallTimeout = 20 * time.Second
)

// Post-start hook names; they show in /readyz?verbose.
const (
	HookPeerTable    = "mvp-peer-table"
	HookRegistration = "mvp-storage-version-registration"
	// HookDiscovery holds readiness until merged discovery was built from
	// this server's documents and every live peer was asked once.
	HookDiscovery = "mvp-peer-discovery"
)

// Config is what the command hands to the proxy.
type Config struct {
	// ServerID is this server's apiserver identity.
	ServerID string
	// Loopback reaches this server as a privileged client.
	Loopback *rest.Config
	// Schemes know the built-in types (kube, apiextensions, aggregator).
	Schemes []*runtime.Scheme

	LiveWindow time.Duration
	Retention  time.Duration

	// Proxy configures proxying; nil: this server registers itself but
	// never proxies (the gate is on without --peer-ca-file).
	Proxy *peerclient.Config
	// Serializer writes the proxy's errors as the client negotiated.
	Serializer runtime.NegotiatedSerializer
	// Version is this binary's version; with what this server serves it
	// names the identity lease's holder (registration.PublishHolder).
	Version string

	// UpstreamRegistration: StorageVersionAPI and APIServerIdentity are both
	// on, so upstream's own updater publishes this server's entries. Ours
	// then writes nothing, so the two writers never fight; the peer table
	// and retention still run.
	UpstreamRegistration bool
	// PeerAddress reads this server's own peer address record (upstream's
	// peer endpoint reconciler writes it once this server is ready; vanilla
	// peers resolve this server by it); nil skips the wait for it. The
	// lease holder changes only once it is there, so vanilla peers fetch
	// this server's discovery when they can reach it.
	PeerAddress func() (string, error)
}

// MixedVersionProxy holds the proxy's controllers and filters.
type MixedVersionProxy struct {
	cfg          Config
	leases       informers.SharedInformerFactory
	cluster      informers.SharedInformerFactory
	crds         apiextensionsinformers.SharedInformerFactory
	apiServices  aggregatorinformers.SharedInformerFactory
	table        *peertable.Table
	registration *registration.Registration
	retention    *registration.Retention
	health       *proxy.Health
	// calls makes one-off loopback calls, each bounded in time; callConfig
	// is its client config.
	calls      kubernetes.Interface
	callConfig *rest.Config

	// Proxying only; all nil without it.
	transports *peerclient.Transports
	forward    *proxy.Forwarder
	merged     *discovery.Merged
	discovery  *discovery.Controller // built by Install, which has the local handler
}

// New builds the proxy's controllers; nothing runs until its hooks do.
func New(cfg Config) (*MixedVersionProxy, error) {
	if cfg.ServerID == "" || cfg.Loopback == nil {
		return nil, fmt.Errorf("peer proxy needs a server ID and a loopback client config")
	}
	if cfg.LiveWindow <= 0 {
		cfg.LiveWindow = peertable.DefaultLiveWindow
	}
	if cfg.Retention <= 0 {
		cfg.Retention = registration.DefaultRetention
	}
	RegisterMetrics()
	m := &MixedVersionProxy{cfg: cfg, callConfig: withCallTimeout(cfg.Loopback, loopbackCallTimeout)}
	if err := m.newInformers(); err != nil {
		return nil, err
	}
	clk := clock.RealClock{}
	svInformer := m.cluster.Internal().V1alpha1().StorageVersions()
	src := peertable.Sources{
		Leases:          m.leases.Coordination().V1().Leases(),
		StorageVersions: svInformer,
	}
	if m.crds != nil {
		src.CRDs = m.crds.Apiextensions().V1().CustomResourceDefinitions()
		src.APIServices = m.apiServices.Apiregistration().V1().APIServices()
	}
	m.table = peertable.New(cfg.ServerID, cfg.LiveWindow, src, clk)
	m.health = proxy.NewHealth(clk)
	if cfg.Proxy != nil {
		t, err := peerclient.New(*cfg.Proxy)
		if err != nil {
			return nil, err
		}
		m.transports = t
		m.forward = proxy.NewForwarder(t, m.health, cfg.Proxy.Headers, cfg.Serializer)
		m.merged = &discovery.Merged{}
	}
	m.retention = registration.NewRetention(cfg.Retention, m.calls, svInformer, m.table, clk)
	if !cfg.UpstreamRegistration {
		m.registration = registration.NewRegistration(cfg.ServerID, m.calls, svInformer, m.updateLocal, clk)
	}
	return m, nil
}

// newInformers builds the loopback clients and the informer factories:
// identity leases and StorageVersions always, CRDs and APIServices only
// when proxying (the table routes extensions only then).
func (m *MixedVersionProxy) newInformers() error {
	client, err := kubernetes.NewForConfig(m.cfg.Loopback)
	if err != nil {
		return err
	}
	if m.calls, err = kubernetes.NewForConfig(m.callConfig); err != nil {
		return err
	}
	m.leases = informers.NewSharedInformerFactoryWithOptions(client, 0,
		informers.WithNamespace(metav1.NamespaceSystem),
		informers.WithTweakListOptions(func(o *metav1.ListOptions) { o.LabelSelector = peers.IdentityLeaseSelector }))
	m.cluster = informers.NewSharedInformerFactory(client, 0)
	if m.cfg.Proxy == nil {
		return nil
	}
	crdClient, err := apiextensionsclient.NewForConfig(m.cfg.Loopback)
	if err != nil {
		return err
	}
	aggClient, err := aggregatorclient.NewForConfig(m.cfg.Loopback)
	if err != nil {
		return err
	}
	// The apiextensions server keeps its own CRD cache, schemas and all;
	// this one keeps only what the peer table reads.
	m.crds = apiextensionsinformers.NewSharedInformerFactoryWithOptions(crdClient, 0,
		apiextensionsinformers.WithTransform(peertable.ServedVersionsOnly))
	m.apiServices = aggregatorinformers.NewSharedInformerFactory(aggClient, 0)
	return nil
}

// updateLocal reads this server's own API through its discovery, hands
// the served group/version/resources to the peer table (the router's
// local set) and returns the StorageVersion entries registration writes.
func (m *MixedVersionProxy) updateLocal(context.Context) (map[string]peers.Entry, error) {
	dc, err := registration.LocalDiscoveryClient(m.callConfig)
	if err != nil {
		return nil, err
	}
	lists, err := registration.LocalResourceLists(dc, m.cfg.Schemes)
	if err != nil {
		return nil, fmt.Errorf("reading this server's discovery: %w", err)
	}
	m.table.SetLocal(registration.LocalGVRs(lists))
	entries, err := registration.LocalEntries(m.cfg.ServerID, lists, m.cfg.Schemes)
	if err == nil && len(entries) == 0 {
		err = fmt.Errorf("discovery shows no built-in persisted resource")
	}
	return entries, err
}

// withCallTimeout is loopback for one-off calls, each cut off after
// timeout; never for watches.
func withCallTimeout(loopback *rest.Config, timeout time.Duration) *rest.Config {
	c := rest.CopyConfig(loopback)
	c.Timeout = timeout
	return c
}

// Install adds the proxy's hooks and debug endpoint to s, the outermost
// (aggregator) server.
func (m *MixedVersionProxy) Install(s *genericapiserver.GenericAPIServer) error {
	s.Handler.NonGoRestfulMux.Handle(DebugPath, m.debugHandler())
	if err := s.AddPostStartHook(HookPeerTable, m.startPeerTable); err != nil {
		return err
	}
	if m.merged != nil {
		// This server's own documents are read in-process, past
		// authentication and past our filters.
		m.discovery = discovery.NewController(discovery.Config{
			Self:       m.cfg.ServerID,
			Table:      m.table,
			Local:      s.UnprotectedHandler(),
			Peers:      m.transports.ForDiscovery(),
			UserHeader: m.cfg.Proxy.Headers.UserHeader(),
			Retention:  m.cfg.Retention,
			Clock:      clock.RealClock{},
			Publish:    m.merged,
		})
		if err := s.AddPostStartHook(HookDiscovery, m.startDiscovery); err != nil {
			return err
		}
	}
	return s.AddPostStartHook(HookRegistration, m.startRegistration)
}

// startPeerTable starts the informers and controllers behind the table and
// holds readiness until the table was built from synced informers and
// knows what this server serves.
func (m *MixedVersionProxy) startPeerTable(ctx genericapiserver.PostStartHookContext) error {
	m.leases.Start(ctx.Done())
	m.cluster.Start(ctx.Done())
	if m.crds != nil {
		m.crds.Start(ctx.Done())
		m.apiServices.Start(ctx.Done())
	}
	if m.transports != nil {
		m.transports.Run(ctx)
	}
	go m.table.Run(ctx, 1)
	go m.retention.Run(ctx, 1)
	// Every built-in group/version is installed before post-start hooks
	// run; reading them now means that once ready, this server never takes
	// a resource it lacks for one it serves (or the reverse).
	var holder string
	err := wait.PollUntilContextCancel(ctx, 100*time.Millisecond, true, func(ctx context.Context) (bool, error) {
		entries, err := m.updateLocal(ctx)
		if err != nil {
			klog.V(2).InfoS("Reading this server's own API; retrying", "err", err)
			return false, nil
		}
		if m.registration != nil {
			m.registration.Seed(entries)
		}
		holder = registration.HolderIdentity(m.cfg.ServerID, m.cfg.Version, entries)
		return true, nil
	})
	if err != nil {
		return err
	}
	err = wait.PollUntilContextCancel(ctx, 100*time.Millisecond, true, func(context.Context) (bool, error) {
		return m.table.HasSynced() && m.table.Snapshot().LocalKnown(), nil
	})
	if err == nil {
		go registration.PublishHolder(ctx, m.calls, m.cfg.ServerID, holder, m.addressPublished)
	}
	return err
}

// addressPublished reports whether this server's peer address record is
// in storage (upstream's reconciler writes it once this server is ready).
func (m *MixedVersionProxy) addressPublished() bool {
	if m.cfg.PeerAddress == nil {
		return true
	}
	addr, err := m.cfg.PeerAddress()
	return err == nil && addr != ""
}

func (m *MixedVersionProxy) startDiscovery(ctx genericapiserver.PostStartHookContext) error {
	go m.discovery.Run(ctx, discoveryWorkers)
	return wait.PollUntilContextCancel(ctx, 100*time.Millisecond, true, func(context.Context) (bool, error) {
		return m.discovery.Ready(), nil
	})
}

func (m *MixedVersionProxy) startRegistration(ctx genericapiserver.PostStartHookContext) error {
	if m.registration == nil {
		klog.InfoS("StorageVersionAPI is enabled: upstream's storage version updater publishes this server's entries; the Mixed Version Proxy only reads them")
		return nil
	}
	go m.registration.Run(ctx, 2)
	return nil
}

// WithPeerProxy wraps next with the proxy's routing filter; without
// proxying it is next.
func (m *MixedVersionProxy) WithPeerProxy(next http.Handler) http.Handler {
	if m.forward == nil {
		return next
	}
	return proxy.WithPeerProxy(next, m.table, m.forward)
}

// WithMergedDiscovery wraps next with merged discovery's filter; without
// proxying it is next.
func (m *MixedVersionProxy) WithMergedDiscovery(next http.Handler) http.Handler {
	if m.forward == nil {
		return next
	}
	return discovery.WithMergedDiscovery(next, m.merged, m.forward, m.cfg.Serializer)
}
