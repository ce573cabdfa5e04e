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
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/mvp-apiserver/kube-apiserver/test/e2e/harness"
)

// The steady client load of an upgrade: through the load balancer and
// through each control-plane node's own server, gets and lists of
// ConfigMaps and (once the API exists) StorageVersionMigrations, creates
// of new ConfigMaps, and a watch of each. Every answer is counted in the
// phase it ended in.

const (
	loadNamespace = "upgrade-load"
	loadMigration = "upgrade-configmaps"
	loadInterval  = 40 * time.Millisecond // 25 requests/s per target
	loadTimeout   = 20 * time.Second      // a hung request is an error, not a wait
)

// target is one address the load goes to.
type target struct {
	Name, URL string
}

// tally is what one target answered in one phase.
type tally struct {
	Requests      int      `json:"requests"`
	FalseNotFound int      `json:"falseNotFound"`
	Unavailable   int      `json:"unavailable"`
	RetryAfter    int      `json:"unavailableWithRetryAfter"`
	Other         int      `json:"otherErrors"`
	LongestGap    float64  `json:"longestWithoutAnswerSeconds"`
	Samples       []string `json:"samples,omitempty"` // the first few errors, as they came
	// NotFound is every false 404 (up to 20), with who answered and
	// the body's start: each one is a failure of the product.
	NotFound []string `json:"falseNotFoundSamples,omitempty"`
	// Unready is every 503 (up to 20), told apart the same way: a 503
	// without Retry-After names neither who answered nor when to retry.
	Unready []string `json:"unavailableSamples,omitempty"`
}

// phaseResult is one phase of the upgrade and its tallies per target.
type phaseResult struct {
	Name    string            `json:"name"`
	Seconds float64           `json:"seconds"`
	Targets map[string]*tally `json:"targets"`
	began   time.Time
}

type load struct {
	targets []target
	client  *http.Client // requests, with loadTimeout
	watcher *http.Client // watches, ended by their context only
	svmOn   atomic.Bool

	mu         sync.Mutex
	phases     []*phaseResult
	lastAnswer map[string]time.Time
}

// newLoad makes the clients from the admin kubeconfig, dialing from the
// client network's namespace.
func newLoad(p plan, targets []target) (*load, error) {
	cfg, err := clientcmd.BuildConfigFromFlags("", p.adminConf())
	if err != nil {
		return nil, err
	}
	cfg.Dial = harness.DialFrom("/run/netns/" + clientNS)
	cfg.QPS, cfg.Burst = -1, -1
	c, err := rest.HTTPClientFor(cfg)
	if err != nil {
		return nil, err
	}
	w := *c
	c.Timeout = loadTimeout
	l := &load{targets: targets, client: c, watcher: &w, lastAnswer: map[string]time.Time{}}
	now := time.Now()
	for _, t := range targets {
		l.lastAnswer[t.Name] = now
	}
	return l, nil
}

// enter starts a phase; answers from now on count in it.
func (l *load) enter(name string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := time.Now()
	if n := len(l.phases); n > 0 {
		l.phases[n-1].Seconds = now.Sub(l.phases[n-1].began).Seconds()
	}
	ph := &phaseResult{Name: name, Targets: map[string]*tally{}, began: now}
	for _, t := range l.targets {
		ph.Targets[t.Name] = &tally{}
	}
	l.phases = append(l.phases, ph)
}

// finish ends the last phase and returns them all.
func (l *load) finish() []*phaseResult {
	l.enter("")
	l.mu.Lock()
	defer l.mu.Unlock()
	l.phases = l.phases[:len(l.phases)-1]
	return l.phases
}

// outcome is one answer, classified.
type outcome int

const (
	answered outcome = iota
	notFound
	unavailable
	unavailableRetry
	failed
)

// record counts one answer of target t; a request that got no answer at
// all (an error) does not end the target's time without one.
func (l *load) record(t target, o outcome, sample string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	ph := l.phases[len(l.phases)-1]
	ta := ph.Targets[t.Name]
	ta.Requests++
	now := time.Now()
	var stamped string // what a sample records, for answers that were not
	if o != answered {
		stamped = now.Format("15:04:05.000") + " " + sample
	}
	switch o {
	case notFound:
		ta.FalseNotFound++
		if len(ta.NotFound) < 20 {
			ta.NotFound = append(ta.NotFound, stamped)
		}
	case unavailable, unavailableRetry:
		ta.Unavailable++
		if o == unavailableRetry {
			ta.RetryAfter++
		}
		if len(ta.Unready) < 20 {
			ta.Unready = append(ta.Unready, stamped)
		}
	case failed:
		ta.Other++
	}
	if o != answered && len(ta.Samples) < 5 {
		ta.Samples = append(ta.Samples, stamped)
	}
	if o == failed && !strings.HasPrefix(sample, "HTTP") {
		return
	}
	if gap := now.Sub(l.lastAnswer[t.Name]).Seconds(); gap > ta.LongestGap {
		ta.LongestGap = gap
	}
	l.lastAnswer[t.Name] = now
}

// classify turns a response (or its absence) into an outcome. Every
// object and collection the load asks for exists, so any 404 is false.
func classify(resp *http.Response, err error, what string) (outcome, string) {
	if err != nil {
		return failed, what + ": " + err.Error()
	}
	switch {
	case resp.StatusCode < 300:
		return answered, ""
	case resp.StatusCode == http.StatusNotFound:
		return notFound, what + ": HTTP 404 " + answerDetail(resp)
	case resp.StatusCode == http.StatusServiceUnavailable && resp.Header.Get("Retry-After") != "":
		return unavailableRetry, what + ": HTTP 503 Retry-After " + resp.Header.Get("Retry-After") + " " + answerDetail(resp)
	case resp.StatusCode == http.StatusServiceUnavailable:
		return unavailable, what + ": HTTP 503 without Retry-After " + answerDetail(resp)
	}
	return failed, fmt.Sprintf("%s: HTTP %d", what, resp.StatusCode)
}

// answerDetail is what says who answered a 404 or a 503: the headers
// the proxy and the server set, and the start of the body.
func answerDetail(resp *http.Response) string {
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 400))
	var hs []string
	for _, h := range []string{"Audit-Id", "X-Kubernetes-Pf-Flowschema-Uid", "X-Kubernetes-Apiserver-Rerouted", "Content-Type"} {
		if v := resp.Header.Get(h); v != "" {
			hs = append(hs, h+"="+v)
		}
	}
	return fmt.Sprintf("[%s] %s", strings.Join(hs, " "), strings.TrimSpace(string(body)))
}

// do sends one request and records its answer.
func (l *load) do(ctx context.Context, t target, method, path, body string) {
	req, err := http.NewRequestWithContext(ctx, method, t.URL+path, strings.NewReader(body))
	if err != nil {
		l.record(t, failed, err.Error())
		return
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := l.client.Do(req)
	if ctx.Err() != nil {
		return
	}
	if resp != nil {
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	o, sample := classify(resp, err, method+" "+path)
	l.record(t, o, sample)
}

// requests is one target's loop of gets, lists and creates.
func (l *load) requests(ctx context.Context, t target) {
	cm := "/api/v1/namespaces/" + loadNamespace + "/configmaps"
	svm := "/apis/storagemigration.k8s.io/v1/storageversionmigrations"
	tick := time.NewTicker(loadInterval)
	defer tick.Stop()
	for i := 0; ; i++ {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		switch i % 6 {
		case 0:
			l.do(ctx, t, http.MethodGet, cm+"/target-"+t.Name, "")
		case 1:
			l.do(ctx, t, http.MethodGet, cm+"?limit=50", "")
		case 2:
			l.do(ctx, t, http.MethodPost, cm, `{"metadata":{"generateName":"load-`+t.Name+`-"},"data":{"by":"`+t.Name+`"}}`)
		case 3:
			if l.svmOn.Load() {
				l.do(ctx, t, http.MethodGet, svm+"/"+loadMigration, "")
			}
		case 4:
			if l.svmOn.Load() {
				l.do(ctx, t, http.MethodGet, svm, "")
			}
		}
	}
}

// start runs the load until ctx ends; wait returns when it has.
func (l *load) start(ctx context.Context) (wait func()) {
	var wg sync.WaitGroup
	for _, t := range l.targets {
		wg.Add(3)
		go func() { defer wg.Done(); l.requests(ctx, t) }()
		go func() {
			defer wg.Done()
			l.watch(ctx, t, "/api/v1/namespaces/"+loadNamespace+"/configmaps", func() bool { return true })
		}()
		go func() {
			defer wg.Done()
			l.watch(ctx, t, "/apis/storagemigration.k8s.io/v1/storageversionmigrations", l.svmOn.Load)
		}()
	}
	return wg.Wait
}
