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
	"net/http"
	"path/filepath"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/mvp-apiserver/kube-apiserver/test/e2e/harness"
)

const ns = "soak"

// slot is one of the three servers; its Server changes at each restart,
// its address and clients do not (one connection pool each, as a real
// client keeps across a server's restart).
type slot struct {
	name string
	ours bool // measured: our binary
	http *http.Client
	kube kubernetes.Interface
	mu   sync.Mutex
	s    *harness.Server
}

func (sl *slot) server() *harness.Server {
	sl.mu.Lock()
	defer sl.mu.Unlock()
	return sl.s
}

// restart stops the slot's server gracefully and starts it again on the
// same address, and says how long each took.
func (sl *slot) restart(ctx context.Context) (restartEvent, error) {
	ev := restartEvent{Server: sl.name, At: time.Now()}
	old := sl.server()
	if err := old.Stop(2 * time.Minute); err != nil {
		return ev, fmt.Errorf("stopping %s: %w", sl.name, err)
	}
	ev.StopSeconds = time.Since(ev.At).Seconds()
	s, err := old.Restart(ctx)
	if err != nil {
		return ev, fmt.Errorf("starting %s again: %w", sl.name, err)
	}
	sl.mu.Lock()
	sl.s = s
	sl.mu.Unlock()
	ev.ReadySeconds = time.Since(ev.At).Seconds() - ev.StopSeconds
	return ev, nil
}

// startServers starts the three servers at once and waits for them.
func startServers(ctx context.Context, c *harness.Cluster, binDir string) ([]*slot, error) {
	opts := []harness.ServerOptions{
		{Name: "soak-proxying", IP: "127.0.0.141", Args: []string{"--runtime-config=batch/v1=false"}},
		{Name: "soak-full", IP: "127.0.0.142"},
		{Name: "soak-v136", IP: "127.0.0.143", Binary: filepath.Join(binDir, "kube-apiserver-previous")},
	}
	slots := make([]*slot, len(opts))
	errs := make([]error, len(opts))
	var wg sync.WaitGroup
	for i, o := range opts {
		slots[i] = &slot{name: o.Name, ours: o.Binary == ""}
		wg.Go(func() { slots[i].s, errs[i] = c.StartServer(ctx, o) })
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			return nil, fmt.Errorf("starting %s: %w", opts[i].Name, err)
		}
		slots[i].http, slots[i].kube = slots[i].s.HTTPClient(), slots[i].s.Client()
	}
	return slots, nil
}

// run is the whole soak.
func run(ctx context.Context, o options) (*result, error) {
	c, err := harness.NewCluster(ctx, o.binDir, filepath.Join(o.out, "cluster"))
	if err != nil {
		return nil, err
	}
	defer c.Stop()
	slots, err := startServers(ctx, c, o.binDir)
	if err != nil {
		return nil, err
	}
	if _, err := slots[1].kube.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil {
		return nil, err
	}
	if err := waitProxied(ctx, slots[0]); err != nil {
		return nil, err
	}
	step("three servers up, %s proxying Jobs; load starts", slots[0].name)
	l, err := startLoad(ctx, o, slots)
	if err != nil {
		return nil, err
	}
	res := &result{Options: o.describe(), Started: time.Now()}
	samples := startSampling(ctx, o.sampleEvery, slots, res)
	restartErr := restartInTurn(ctx, o, slots, res)
	if restartErr == nil {
		res.Final = settleAndMeasure(ctx, o.settle, slots)
	}
	samples()
	l.finish(ctx, res, slots[1])
	res.judge()
	return res, restartErr
}

// waitProxied waits until the proxying server answers a list of Jobs.
func waitProxied(ctx context.Context, sl *slot) error {
	deadline := time.Now().Add(2 * time.Minute)
	for {
		_, err := harness.Fetch(ctx, sl.http, sl.server().URL+jobsPath)
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s never proxied Jobs: %w", sl.name, err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(500 * time.Millisecond):
		}
	}
}

// restartInTurn restarts the proxying server first (the first restart,
// after which the baseline is taken), then the other two in turn until the
// duration is over. The proxying server is not restarted again, so its
// figures at the end carry every one of its peers' restarts.
func restartInTurn(ctx context.Context, o options, slots []*slot, res *result) error {
	end := time.Now().Add(o.duration)
	order := []*slot{slots[1], slots[2]}
	for i := 0; ; i++ {
		sl := slots[0]
		if i > 0 {
			sl = order[(i-1)%len(order)]
		}
		began := time.Now()
		ev, err := sl.restart(ctx)
		if err != nil {
			return err
		}
		res.addRestart(ev)
		step("restart %d: %s stopped in %.1fs, ready %.1fs later", i+1, ev.Server, ev.StopSeconds, ev.ReadySeconds)
		if i == 0 {
			res.Baseline = settleAndMeasure(ctx, o.settle, slots)
		}
		next := began.Add(o.restartEvery)
		last := next.After(end)
		if last {
			next = end // the load runs on to the end of the duration
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(time.Until(next)):
		}
		if last {
			return nil
		}
	}
}

func step(format string, args ...any) {
	fmt.Printf("%s  %s\n", time.Now().Format("15:04:05"), fmt.Sprintf(format, args...))
}
