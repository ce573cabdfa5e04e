// Command kube-apiserver is upstream's Kubernetes API server with the fork's
// Mixed Version Proxy wired in through the UnknownVersionInteroperabilityProxy
// feature gate.
package main

import (
	"os"

	"k8s.io/component-base/cli"

	"github.com/mvp-apiserver/kube-apiserver/cmd/kube-apiserver/app"
)

func main() {
	os.Exit(cli.Run(app.NewCommand()))
}
