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

// Package app is the thin wiring of our kube-apiserver: upstream's options
// and server chain, our peer options, our Mixed Version Proxy pieces.
package app

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/spf13/cobra"

	utilerrors "k8s.io/apimachinery/pkg/util/errors"
	utilnet "k8s.io/apimachinery/pkg/util/net"
	genericfeatures "k8s.io/apiserver/pkg/features"
	genericapiserver "k8s.io/apiserver/pkg/server"
	"k8s.io/apiserver/pkg/server/flagz"
	"k8s.io/client-go/rest"
	cliflag "k8s.io/component-base/cli/flag"
	"k8s.io/component-base/cli/globalflag"
	basecompatibility "k8s.io/component-base/compatibility"
	"k8s.io/component-base/featuregate"
	"k8s.io/component-base/logs"
	logsapi "k8s.io/component-base/logs/api/v1"
	"k8s.io/component-base/term"
	"k8s.io/component-base/version/verflag"
	upstreamoptions "k8s.io/kubernetes/cmd/kube-apiserver/app/options"

	"github.com/mvp-apiserver/kube-apiserver/pkg/options"
)

// shutdownWatchTerminationGracePeriod is this build's default for
// --shutdown-watch-termination-grace-period: how long a stopping server
// waits for the watches it ended to drain.
const shutdownWatchTerminationGracePeriod = 5 * time.Second

// NewCommand returns the kube-apiserver command: every upstream flag with
// its upstream meaning, the peer flags with ours.
func NewCommand() *cobra.Command {
	s := upstreamoptions.NewServerRunOptions()
	// A stopping server ends its watches as its shutdown begins, so their
	// clients (and peers proxying them here) go to another server at once
	// instead of holding this one for the HTTP server's 60 s shutdown
	// timeout: a restart is that much shorter a window without this server.
	// Upstream's default is 0 (watches are not ended); the flag still sets it.
	s.GenericServerRunOptions.ShutdownWatchTerminationGracePeriod = shutdownWatchTerminationGracePeriod
	ctx := genericapiserver.SetupSignalContext()
	gates := s.GenericServerRunOptions.ComponentGlobalsRegistry.FeatureGateFor(basecompatibility.DefaultKubeComponent)

	cmd := &cobra.Command{
		Use: "kube-apiserver",
		Long: `The Kubernetes API server validates and configures data for the API objects
(pods, services, replication controllers and others) and is the front end to
the cluster's shared state through which all other components interact.

This build adds the Mixed Version Proxy: with the
UnknownVersionInteroperabilityProxy feature gate on, a request for a resource
this server does not serve is forwarded to a peer kube-apiserver that serves
it, instead of answering a false 404 during an upgrade.`,
		SilenceUsage: true,
		PersistentPreRunE: func(*cobra.Command, []string) error {
			if err := s.GenericServerRunOptions.ComponentGlobalsRegistry.Set(); err != nil {
				return err
			}
			// Loopback clients must not log warnings this server issued to itself.
			rest.SetDefaultWarningHandler(rest.NoWarnings{})
			return nil
		},
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runCommand(ctx, cmd, s, gates)
		},
		Args: func(cmd *cobra.Command, args []string) error {
			for _, arg := range args {
				if len(arg) > 0 {
					return fmt.Errorf("%q does not take any arguments, got %q", cmd.CommandPath(), args)
				}
			}
			return nil
		},
	}
	cmd.SetContext(ctx)
	addFlags(cmd, s)
	return cmd
}

// runCommand validates ours and upstream's options, in that order, and
// runs the server.
func runCommand(ctx context.Context, cmd *cobra.Command, s *upstreamoptions.ServerRunOptions, gates featuregate.FeatureGate) error {
	verflag.PrintAndExitIfRequested()
	if err := logsapi.ValidateAndApply(s.Logs, gates); err != nil {
		return err
	}
	cliflag.PrintFlags(cmd.Flags())

	peerFlags := peerFlagsOf(s, gates)
	// Ours first, so bad peer flags fail before anything is completed.
	// The egress check is independent of the gate: it keeps a
	// configuration that passes upstream's validation from crashing
	// the server at start-up.
	egress, err := options.ControlPlaneEgress(s.EgressSelector.ConfigFile)
	errs := options.Validate(peerFlags)
	if err != nil {
		errs = append(errs, err)
	}
	if len(errs) > 0 {
		return utilerrors.NewAggregate(errs)
	}
	addrs := options.Addresses{
		AdvertiseAddress: s.GenericServerRunOptions.AdvertiseAddress, // before Complete defaults it
		BindAddress:      s.SecureServing.BindAddress,
		SecurePort:       s.SecureServing.BindPort,
		HostIP:           utilnet.ChooseHostInterface,
	}
	peerConfig, err := options.Resolve(peerFlags, addrs)
	if err != nil {
		return err
	}
	peerConfig.EgressProxy = egress
	if peerConfig.Enabled {
		options.EnableStorageVersionAPI(s.APIEnablement.RuntimeConfig)
	}

	completed, err := s.Complete(ctx)
	if err != nil {
		return err
	}
	if errs := completed.Validate(); len(errs) != 0 {
		return utilerrors.NewAggregate(errs)
	}
	gates.(featuregate.MutableFeatureGate).AddMetrics()
	s.GenericServerRunOptions.ComponentGlobalsRegistry.AddMetrics()
	return Run(ctx, completed, peerConfig)
}

// addFlags adds upstream's flag sets, with our help for the peer flags.
func addFlags(cmd *cobra.Command, s *upstreamoptions.ServerRunOptions) {

	namedFlagSets := s.Flags()
	s.Flagz = flagz.NamedFlagSetsReader{FlagSets: namedFlagSets}
	verflag.AddFlags(namedFlagSets.FlagSet("global"))
	globalflag.AddGlobalFlags(namedFlagSets.FlagSet("global"), cmd.Name(), logs.SkipLoggingConfigurationFlags())
	if err := options.SetHelp(namedFlagSets.FlagSet("misc")); err != nil {
		panic(err) // upstream changed its flags: a build problem, not a user one
	}
	for _, f := range namedFlagSets.FlagSets {
		cmd.Flags().AddFlagSet(f)
	}
	cols, _, _ := term.TerminalSize(cmd.OutOrStdout())
	cliflag.SetUsageAndHelpFunc(cmd, namedFlagSets, cols)
}

func peerFlagsOf(s *upstreamoptions.ServerRunOptions, gates featuregate.FeatureGate) options.PeerFlags {
	return options.PeerFlags{
		GateEnabled:         gates.Enabled(genericfeatures.UnknownVersionInteroperabilityProxy),
		CAFile:              s.PeerCAFile,
		AdvertiseIP:         s.PeerAdvertiseAddress.PeerAdvertiseIP,
		AdvertisePort:       s.PeerAdvertiseAddress.PeerAdvertisePort,
		ProxyClientCertFile: s.ProxyClientCertFile,
		ProxyClientKeyFile:  s.ProxyClientKeyFile,
		RuntimeConfig:       s.APIEnablement.RuntimeConfig,
		Retention:           os.Getenv(options.EnvRetention),
		RequestHeader:       requestHeaderOf(s),
	}
}

func requestHeaderOf(s *upstreamoptions.ServerRunOptions) options.RequestHeader {
	rh := s.Authentication.RequestHeader
	if rh == nil {
		return options.RequestHeader{}
	}
	return options.RequestHeader{
		ClientCAFile:    rh.ClientCAFile,
		UsernameHeaders: rh.UsernameHeaders,
		UIDHeaders:      rh.UIDHeaders,
		GroupHeaders:    rh.GroupHeaders,
		ExtraPrefixes:   rh.ExtraHeaderPrefixes,
	}
}
