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
	"slices"
	"strings"
	"time"

	"golang.org/x/sync/errgroup"
	"golang.org/x/time/rate"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/mvp-apiserver/kube-apiserver/test/e2e/harness"
)

// annotationBytes fills each seeded Job close to the 256 KiB limit on an
// object's annotations, so few objects make a large LIST.
const annotationBytes = 240_000

// seedList creates Jobs in ns on the serving server until their JSON adds
// up to at least mb megabytes (10^6 bytes). It returns how many it made.
func seedList(ctx context.Context, c kubernetes.Interface, ns string, mb int) (int, error) {
	if _, err := c.CoreV1().Namespaces().Create(ctx, namespace(ns), metaCreate); err != nil {
		return 0, err
	}
	n := mb*1_000_000/annotationBytes + 1
	filler := strings.Repeat("0123456789abcdef", annotationBytes/16)
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(4)
	for i := range n {
		g.Go(func() error {
			job := benchJob(fmt.Sprintf("list-%04d", i), ns)
			job.Annotations = map[string]string{"bench.mvp.example/filler": filler}
			_, err := c.BatchV1().Jobs(ns).Create(gctx, job, metaCreate)
			return err
		})
	}
	return n, g.Wait()
}

var metaCreate = metav1.CreateOptions{}

func namespace(name string) *corev1.Namespace {
	return &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}
}

// benchJob is a minimal valid Job; no controller runs it.
func benchJob(name, ns string) *batchv1.Job {
	return &batchv1.Job{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
		Spec: batchv1.JobSpec{Template: corev1.PodTemplateSpec{Spec: corev1.PodSpec{
			RestartPolicy: corev1.RestartPolicyNever,
			Containers:    []corev1.Container{{Name: "bench", Image: "registry.k8s.io/pause:3.10"}},
		}}},
	}
}

// medianHeap is the median of n heapAlloc samples.
func medianHeap(ctx context.Context, client *http.Client, server string, n int) (uint64, error) {
	var heaps []uint64
	for range n {
		h, err := harness.LiveHeap(ctx, client, server)
		if err != nil {
			return 0, err
		}
		heaps = append(heaps, h)
	}
	slices.Sort(heaps)
	return heaps[n/2], nil
}

// listFigures are the large LIST's measurements.
type listFigures struct {
	Objects    int
	Bytes      int64
	Took       time.Duration
	BaselineMB float64 // proxying server's live heap before the LIST
	PeakMB     float64 // its highest live heap while the LIST passed
	GrowthMB   float64
	Samples    int
}

// listThroughProxy reads the seeded LIST through the proxying server at
// most mbps megabytes a second (a client slower than the two servers, so
// anything the proxy buffers shows), sampling the proxying server's live
// heap every interval meanwhile.
func listThroughProxy(ctx context.Context, proxied target, admin *http.Client, proxyURL string, mbps float64, interval time.Duration) (listFigures, error) {
	var fig listFigures
	baseline, err := medianHeap(ctx, admin, proxyURL, 5)
	if err != nil {
		return fig, err
	}

	sampler := startHeapSampler(ctx, admin, proxyURL, interval)
	start := time.Now()
	n, err := readPaced(ctx, proxied, mbps)
	fig.Took = time.Since(start)
	peak, samples, sampleErr := sampler.stop()
	if err != nil {
		return fig, err
	}
	if sampleErr != nil {
		return fig, sampleErr
	}
	if samples < 3 {
		return fig, fmt.Errorf("only %d heap samples while the LIST passed; lower the read rate", samples)
	}
	fig.Bytes, fig.Samples = n, samples
	fig.BaselineMB, fig.PeakMB = float64(baseline)/1e6, float64(peak)/1e6
	fig.GrowthMB = max(fig.PeakMB-fig.BaselineMB, 0)
	return fig, nil
}

// heapSampler reads a server's live heap every interval until stopped and
// keeps the highest value.
type heapSampler struct {
	cancel  context.CancelFunc
	done    chan struct{}
	peak    uint64
	samples int
	err     error
}

func startHeapSampler(ctx context.Context, admin *http.Client, url string, interval time.Duration) *heapSampler {
	ctx, cancel := context.WithCancel(ctx)
	s := &heapSampler{cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(s.done)
		tick := time.NewTicker(interval)
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
			h, err := harness.LiveHeap(ctx, admin, url)
			if err != nil {
				if ctx.Err() == nil {
					s.err = err
				}
				return
			}
			s.peak = max(s.peak, h)
			s.samples++
		}
	}()
	return s
}

// stop ends the sampling and returns the highest heap seen, the number of
// samples and the first read that failed.
func (s *heapSampler) stop() (uint64, int, error) {
	s.cancel()
	<-s.done
	return s.peak, s.samples, s.err
}

// readPaced reads the target's whole answer, uncompressed, no faster than
// mbps megabytes a second, and returns its size.
func readPaced(ctx context.Context, t target, mbps float64) (int64, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, t.url, nil)
	if err != nil {
		return 0, err
	}
	req.Header.Set("Accept", "application/json")
	req.Header.Set("Accept-Encoding", "identity")
	resp, err := t.client.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return 0, fmt.Errorf("%s: LIST %s answered %d: %s", t.name, t.url, resp.StatusCode, body)
	}
	const chunk = 256 * 1024
	lim := rate.NewLimiter(rate.Limit(mbps*1e6), chunk)
	buf := make([]byte, chunk)
	var total int64
	for {
		n, err := resp.Body.Read(buf)
		total += int64(n)
		if n > 0 {
			if werr := lim.WaitN(ctx, n); werr != nil {
				return total, werr
			}
		}
		if err == io.EOF {
			return total, nil
		}
		if err != nil {
			return total, err
		}
	}
}
