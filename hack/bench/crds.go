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

package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sync/errgroup"

	apidiscoveryv2 "k8s.io/api/apidiscovery/v2"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apiextensionsclient "k8s.io/apiextensions-apiserver/pkg/client/clientset/clientset"
	apiextensionsv1client "k8s.io/apiextensions-apiserver/pkg/client/clientset/clientset/typed/apiextensions/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/mvp-apiserver/kube-apiserver/test/e2e/harness"
)

// Aggregated discovery, merged and as a server's own view.
const (
	acceptAggregated = "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList"
	acceptNoPeer     = acceptAggregated + ";profile=nopeer"
	crdGroupSuffix   = ".bench.example"
)

// discoveryPlan says how large the cluster's API gets and how long idle
// CPU is measured.
type discoveryPlan struct {
	CRDs     int
	Requests int // per document, after 20 to warm up
	Idle     time.Duration
}

// discoveryFigures are the discovery-at-scale phase's measurements.
type discoveryFigures struct {
	CRDs                 int
	MergedP50, NoPeerP50 time.Duration
	MergedBytes          int
	// RemovalMax: a deleted CRD gone from every server's merged /apis;
	// RemovalTimedOut when some server still listed it at the deadline.
	RemovalMax      time.Duration
	RemovalTimedOut bool
	// A's CPU (percent of one core) over the idle window, and its live
	// heap, with the gate on and then off.
	IdleCPUOn, IdleCPUOff float64
	HeapOnMB, HeapOffMB   float64
}

// measureDiscovery adds a third server C, creates plan.CRDs CRDs (each in
// a group of its own) on B, compares A's merged /apis with its own view,
// deletes one CRD and times its removal from every server, then measures
// A idle twice, each time just restarted: with the gate on, then off. A is
// left running with the gate off.
// With idleProfile set, a CPU profile of A over its idle window with the
// gate on is saved there.
func measureDiscovery(ctx context.Context, plan discoveryPlan, c *harness.Cluster, spec pairSpec, a, b *harness.Server, idleProfile string) (discoveryFigures, error) {
	fig := discoveryFigures{CRDs: plan.CRDs}
	cs, err := c.StartServer(ctx, harness.ServerOptions{Name: spec.key + "-c", Binary: spec.binary, IP: spec.ipC, Gate: harness.On(true)})
	if err != nil {
		return fig, fmt.Errorf("server C: %w", err)
	}
	servers := []*harness.Server{a, b, cs}
	if err := createCRDs(ctx, b, plan.CRDs); err != nil {
		return fig, err
	}
	for _, s := range servers {
		if err := waitGroups(ctx, s, plan.CRDs); err != nil {
			return fig, err
		}
	}
	if fig.MergedP50, fig.NoPeerP50, fig.MergedBytes, err = discoveryLatency(ctx, a, plan.Requests); err != nil {
		return fig, err
	}
	if fig.RemovalMax, fig.RemovalTimedOut, err = timeRemoval(ctx, b, servers, crdGroup(0)); err != nil {
		return fig, err
	}
	// Both idle windows are of a server just restarted, once with the gate
	// on and once off: a server's first minutes cost more than later ones,
	// and that must fall on both sides alike.
	on, err := restartIdle(ctx, c, a, true, plan.Idle, idleProfile)
	if err != nil {
		return fig, err
	}
	fig.IdleCPUOn, fig.HeapOnMB = on.cpuPct, on.heapMB
	off, err := restartIdle(ctx, c, on.server, false, plan.Idle, "")
	fig.IdleCPUOff, fig.HeapOffMB = off.cpuPct, off.heapMB
	return fig, err
}

// restartIdle stops s, starts it again with the gate as given (same flags
// otherwise) and measures it idle; with profile set, a CPU profile of the
// idle window is saved there.
func restartIdle(ctx context.Context, c *harness.Cluster, s *harness.Server, gate bool, d time.Duration, profile string) (idle, error) {
	again, err := restartWithGate(ctx, c, s, gate)
	if err != nil {
		return idle{}, err
	}
	var onStart func()
	if profile != "" {
		// A client without a timeout: the profile takes the whole window.
		onStart = func() { go saveCPUProfile(ctx, watchClient(again), again.URL, d, profile) }
	}
	load, err := idleLoad(ctx, again, d, onStart)
	load.server = again
	return load, err
}

// restartWithGate stops s and starts it again with the gate on or off.
func restartWithGate(ctx context.Context, c *harness.Cluster, s *harness.Server, gate bool) (*harness.Server, error) {
	if err := s.Stop(time.Minute); err != nil {
		return nil, err
	}
	opts := s.Opts
	opts.Gate = harness.On(gate)
	again, err := c.StartServer(ctx, opts)
	if err != nil {
		return nil, fmt.Errorf("%s with the gate %s: %w", opts.Name, map[bool]string{true: "on", false: "off"}[gate], err)
	}
	return again, nil
}

func crdGroup(i int) string { return fmt.Sprintf("g%03d", i) + crdGroupSuffix }

// createCRDs creates n CRDs on s, 8 at a time, each the only kind of its
// group.
func createCRDs(ctx context.Context, s *harness.Server, n int) error {
	client, err := crdClient(s)
	if err != nil {
		return err
	}
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(8)
	for i := range n {
		g.Go(func() error {
			_, err := client.Create(gctx, benchCRD(crdGroup(i)), metaCreate)
			return err
		})
	}
	return g.Wait()
}

// crdClient reads and writes s's CRDs.
func crdClient(s *harness.Server) (apiextensionsv1client.CustomResourceDefinitionInterface, error) {
	cs, err := apiextensionsclient.NewForConfig(s.RESTConfig())
	if err != nil {
		return nil, err
	}
	return cs.ApiextensionsV1().CustomResourceDefinitions(), nil
}

func benchCRD(group string) *apiextensionsv1.CustomResourceDefinition {
	preserve := true
	return &apiextensionsv1.CustomResourceDefinition{
		ObjectMeta: metav1.ObjectMeta{Name: "widgets." + group},
		Spec: apiextensionsv1.CustomResourceDefinitionSpec{
			Group: group,
			Names: apiextensionsv1.CustomResourceDefinitionNames{Plural: "widgets", Singular: "widget", Kind: "Widget", ListKind: "WidgetList"},
			Scope: apiextensionsv1.NamespaceScoped,
			Versions: []apiextensionsv1.CustomResourceDefinitionVersion{{
				Name: "v1", Served: true, Storage: true,
				Schema: &apiextensionsv1.CustomResourceValidation{OpenAPIV3Schema: &apiextensionsv1.JSONSchemaProps{
					Type: "object", XPreserveUnknownFields: &preserve,
				}},
			}},
		},
	}
}

// apisDoc is one GET of a server's /apis as aggregated discovery.
type apisDoc struct {
	code   int
	etag   string
	body   []byte
	groups map[string]bool
}

func getAPIs(ctx context.Context, client *http.Client, s *harness.Server, accept, etag string) (apisDoc, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.URL+"/apis", nil)
	if err != nil {
		return apisDoc{}, err
	}
	req.Header.Set("Accept", accept)
	if etag != "" {
		req.Header.Set("If-None-Match", etag)
	}
	resp, err := client.Do(req)
	if err != nil {
		return apisDoc{}, err
	}
	defer resp.Body.Close()
	d := apisDoc{code: resp.StatusCode, etag: resp.Header.Get("ETag")}
	if d.body, err = io.ReadAll(resp.Body); err != nil {
		return d, err
	}
	if d.code != http.StatusOK && d.code != http.StatusNotModified {
		return d, fmt.Errorf("%s /apis answered %d: %.200s", s.Name, d.code, d.body)
	}
	return d, nil
}

// benchGroups lists the CRD groups of an aggregated /apis document.
func benchGroups(body []byte) (map[string]bool, error) {
	var list apidiscoveryv2.APIGroupDiscoveryList
	if err := json.Unmarshal(body, &list); err != nil {
		return nil, err
	}
	out := map[string]bool{}
	for _, g := range list.Items {
		if strings.HasSuffix(g.Name, crdGroupSuffix) {
			out[g.Name] = true
		}
	}
	return out, nil
}

// waitGroups polls until s's merged /apis lists n CRD groups, for up to
// three minutes and a tenth of a second per CRD.
func waitGroups(ctx context.Context, s *harness.Server, n int) error {
	client := s.HTTPClient()
	return pollUntil(ctx, 500*time.Millisecond, 3*time.Minute+time.Duration(n)*100*time.Millisecond, func() (bool, string, error) {
		d, err := getAPIs(ctx, client, s, acceptAggregated, "")
		if err != nil {
			return false, "", err
		}
		groups, err := benchGroups(d.body)
		return len(groups) >= n, fmt.Sprintf("%s lists %d of %d CRD groups", s.Name, len(groups), n), err
	})
}

// discoveryLatency reads A's merged /apis and its own view in turns and
// returns the p50 of each and the merged document's size.
func discoveryLatency(ctx context.Context, a *harness.Server, n int) (merged, nopeer time.Duration, size int, err error) {
	client := a.HTTPClient()
	var lat [2][]time.Duration
	for i := range 20 + n {
		for k, accept := range []string{acceptAggregated, acceptNoPeer} {
			start := time.Now()
			d, err := getAPIs(ctx, client, a, accept, "")
			if err != nil {
				return 0, 0, 0, err
			}
			if i >= 20 {
				lat[k] = append(lat[k], time.Since(start))
			}
			if k == 0 {
				size = len(d.body)
			}
		}
	}
	return percentile(lat[0], 50), percentile(lat[1], 50), size, nil
}

// timeRemoval deletes group's CRD on b and times how long until no
// server's merged /apis lists it.
func timeRemoval(ctx context.Context, b *harness.Server, servers []*harness.Server, group string) (time.Duration, bool, error) {
	client, err := crdClient(b)
	if err != nil {
		return 0, false, err
	}
	start := time.Now()
	if err := client.Delete(ctx, "widgets."+group, metav1.DeleteOptions{}); err != nil {
		return 0, false, err
	}
	return untilListed(ctx, servers, group, false, start)
}

// idle is a server's CPU over an idle window and its live heap after.
type idle struct {
	cpuPct, heapMB float64
	server         *harness.Server // the server measured
}

// idleSettle is how long a server is left alone before its idle window,
// so that what the previous step started (a CRD's deletion, a restart's
// last post-start work) is over in both windows alike.
const idleSettle = 15 * time.Second

// idleLoad measures s's CPU time over d (from /proc: user and system
// time of all its threads) with no client load, then its live heap. The
// window starts idleSettle after the call and right after a forced
// collection: the runtime forces one when two minutes pass without, and
// marking a heap this size takes on the order of a tenth of a second or
// more, a few tenths of a point over a minute, in one window and not the
// other.
func idleLoad(ctx context.Context, s *harness.Server, d time.Duration, onStart func()) (idle, error) {
	if err := pause(ctx, idleSettle); err != nil {
		return idle{}, err
	}
	if _, err := harness.LiveHeap(ctx, s.HTTPClient(), s.URL); err != nil { // collects first
		return idle{}, err
	}
	if onStart != nil {
		onStart()
	}
	before, err := cpuTime(s.PID())
	if err != nil {
		return idle{}, err
	}
	start := time.Now()
	if err := pause(ctx, d); err != nil { // the measurement window itself
		return idle{}, err
	}
	after, err := cpuTime(s.PID())
	if err != nil {
		return idle{}, err
	}
	load, err := sampleLoad(ctx, s.HTTPClient(), s.URL)
	if err != nil {
		return idle{}, err
	}
	return idle{cpuPct: 100 * (after - before).Seconds() / time.Since(start).Seconds(), heapMB: float64(load.heap) / 1e6}, nil
}

// cpuTime is a process's user plus system time, from /proc/<pid>/stat.
func cpuTime(pid int) (time.Duration, error) {
	data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, err
	}
	return parseStatCPU(string(data))
}

// parseStatCPU reads utime and stime (fields 14 and 15, in USER_HZ = 100
// ticks a second on Linux) from a /proc/<pid>/stat line.
func parseStatCPU(stat string) (time.Duration, error) {
	// The command name (field 2) is in parentheses and may hold spaces.
	fields := strings.Fields(stat[strings.LastIndexByte(stat, ')')+1:])
	if len(fields) < 13 {
		return 0, fmt.Errorf("/proc stat line has %d fields after the command", len(fields))
	}
	var ticks int64
	for _, f := range fields[11:13] { // utime, stime
		v, err := strconv.ParseInt(f, 10, 64)
		if err != nil {
			return 0, fmt.Errorf("/proc stat line: %w", err)
		}
		ticks += v
	}
	return time.Duration(ticks) * 10 * time.Millisecond, nil
}
