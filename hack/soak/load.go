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
	"sync"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/mvp-apiserver/kube-apiserver/test/e2e/harness"
)

const jobsPath = "/apis/batch/v1/namespaces/" + ns + "/jobs"

// load is the steady client load: watchers, a reader per server and a
// writer of Jobs.
type load struct {
	stop     context.CancelFunc
	wg       sync.WaitGroup
	watchers map[string][]*harness.Watcher // per server
	mu       sync.Mutex
	reads    map[string]*readTally
	created  int
}

// readTally counts one server's reads of a Job that exists.
type readTally struct {
	Requests      int `json:"requests"`
	FalseNotFound int `json:"falseNotFound"`
	Unavailable   int `json:"unavailable"`
	Other         int `json:"otherErrors"`
}

func startLoad(ctx context.Context, o options, slots []*slot) (*load, error) {
	ctx, cancel := context.WithCancel(ctx)
	l := &load{stop: cancel, watchers: map[string][]*harness.Watcher{}, reads: map[string]*readTally{}}
	if _, err := slots[1].kube.BatchV1().Jobs(ns).Create(ctx, job("read"), metav1.CreateOptions{}); err != nil {
		cancel()
		return nil, err
	}
	for _, sl := range slots {
		for range o.watchers {
			w, err := harness.NewWatcher(sl.server(), jobsPath)
			if err != nil {
				cancel()
				return nil, err
			}
			l.watchers[sl.name] = append(l.watchers[sl.name], w)
			l.wg.Go(func() { w.Run(ctx) })
		}
		l.reads[sl.name] = &readTally{}
		l.wg.Go(func() { l.read(ctx, sl) })
	}
	l.wg.Go(func() { l.create(ctx, o.createEvery, slots[1:]) })
	return l, nil
}

// read GETs the Job "read" through sl every 200 ms; it always exists.
func (l *load) read(ctx context.Context, sl *slot) {
	for ctx.Err() == nil {
		s := sl.server()
		rctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		req, _ := http.NewRequestWithContext(rctx, http.MethodGet, s.URL+jobsPath+"/read", nil)
		resp, err := sl.http.Do(req)
		code := 0
		if err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			code = resp.StatusCode
		}
		cancel()
		if ctx.Err() != nil {
			return
		}
		l.mu.Lock()
		t := l.reads[sl.name]
		t.Requests++
		switch {
		case code == http.StatusNotFound:
			t.FalseNotFound++
		case code == http.StatusServiceUnavailable:
			t.Unavailable++
		case code != http.StatusOK:
			t.Other++
		}
		l.mu.Unlock()
		harness.Pause(ctx, 200*time.Millisecond)
	}
}

// create writes a Job every interval through the first of writers that
// answers.
func (l *load) create(ctx context.Context, every time.Duration, writers []*slot) {
	for i := 0; ctx.Err() == nil; i++ {
		for _, w := range writers {
			cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			_, err := w.kube.BatchV1().Jobs(ns).Create(cctx, job(fmt.Sprintf("soak-%06d", i)), metav1.CreateOptions{})
			cancel()
			if err == nil {
				l.mu.Lock()
				l.created++
				l.mu.Unlock()
				break
			}
		}
		harness.Pause(ctx, every)
	}
}

// finish stops the writer and readers, then gives every watcher a minute
// to have seen every stored Job, and records what each saw.
func (l *load) finish(ctx context.Context, res *result, truth *slot) {
	l.stop()
	l.wg.Wait()
	res.Reads, res.Created = l.reads, l.created
	list, err := truth.kube.BatchV1().Jobs(ns).List(ctx, metav1.ListOptions{})
	if err != nil {
		res.Problems = append(res.Problems, "listing the stored Jobs: "+err.Error())
		return
	}
	var names []string
	for _, j := range list.Items {
		names = append(names, j.Name)
	}
	res.Stored = len(names)
	// The watchers were stopped with the load: run them again to catch
	// up from where they were, as a client would after a pause.
	cctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	var wg sync.WaitGroup
	for server, ws := range l.watchers {
		for i, w := range ws {
			wg.Go(func() { res.addWatcher(server, i, caughtUp(cctx, w, names)) })
		}
	}
	wg.Wait()
}

// caughtUp runs w until it saw every one of names (or ctx ends), and says
// how it did.
func caughtUp(ctx context.Context, w *harness.Watcher, names []string) watcherResult {
	wctx, stop := context.WithCancel(ctx)
	go w.Run(wctx)
	defer stop()
	for {
		notOnce, outOfOrder := w.Check(names)
		if len(notOnce) == 0 || ctx.Err() != nil {
			st := w.State()
			return watcherResult{Streams: st.Opened, Lists: st.Lists, NotOnce: first(notOnce, 10), NotOnceCount: len(notOnce), OutOfOrder: first(outOfOrder, 10)}
		}
		harness.Pause(ctx, 250*time.Millisecond)
	}
}

func first(s []string, n int) []string { return s[:min(len(s), n)] }

func job(name string) *batchv1.Job {
	return &batchv1.Job{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
		Spec: batchv1.JobSpec{Template: corev1.PodTemplateSpec{Spec: corev1.PodSpec{
			RestartPolicy: corev1.RestartPolicyNever,
			Containers:    []corev1.Container{{Name: "soak", Image: "registry.k8s.io/pause:3.10"}},
		}}},
	}
}
