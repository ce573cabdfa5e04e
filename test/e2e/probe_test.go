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

package e2e

import (
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/onsi/ginkgo/v2"
	"github.com/onsi/gomega"

	"github.com/mvp-apiserver/kube-apiserver/test/e2e/harness"
)

const (
	probeEvery = 100 * time.Millisecond
	// probeTimeout is when a probe's client gives up: an answer that
	// took this long is a hang.
	probeTimeout = 30 * time.Second
)

// probeAnswer is one GET's outcome: when it was sent, its status (0: no
// answer), how long it took, and for anything but a 200 what came back.
type probeAnswer struct {
	sent time.Time
	code int
	took time.Duration
	what string
}

// probe sends a GET every probeEvery, each on its own, and keeps every
// answer with its send time, so that a spec can judge the answers sent
// while a fault lasted.
type probe struct {
	quit chan struct{}
	wg   sync.WaitGroup

	mu      sync.Mutex
	answers []probeAnswer
}

// startProbe probes path on s with an admin client that gives up after
// probeTimeout.
func startProbe(s *harness.Server, path string) *probe {
	client := s.HTTPClient()
	client.Timeout = probeTimeout
	return startProbeWith(client, s.URL+path)
}

// startProbeWith probes url through client.
func startProbeWith(client *http.Client, url string) *probe {
	p := &probe{quit: make(chan struct{})}
	p.wg.Add(1)
	go func() {
		defer ginkgo.GinkgoRecover()
		defer p.wg.Done()
		tick := time.NewTicker(probeEvery)
		defer tick.Stop()
		for {
			select {
			case <-p.quit:
				return
			case <-tick.C:
				p.wg.Add(1)
				go func() {
					defer p.wg.Done()
					a := probeAnswer{sent: time.Now()}
					code, body, err := do(client, url, nil)
					a.code, a.took = code, time.Since(a.sent)
					switch {
					case err != nil:
						a.code, a.what = 0, err.Error()
					case code != 200:
						a.what = body[:min(len(body), 300)]
					}
					p.mu.Lock()
					p.answers = append(p.answers, a)
					p.mu.Unlock()
				}()
			}
		}
	}()
	return p
}

// stop sends no more and returns every answer once the last one is in
// (probeTimeout at most), in the order they were sent.
func (p *probe) stop() []probeAnswer {
	close(p.quit)
	p.wg.Wait()
	p.mu.Lock()
	defer p.mu.Unlock()
	all := slices.Clone(p.answers)
	slices.SortFunc(all, func(x, y probeAnswer) int { return x.sent.Compare(y.sent) })
	return all
}

// answers is a run of probe answers, such as those sent while a fault
// lasted.
type answers []probeAnswer

// window keeps the answers sent in [from, to).
func window(all []probeAnswer, from, to time.Time) answers {
	var w answers
	for _, a := range all {
		if !a.sent.Before(from) && a.sent.Before(to) {
			w = append(w, a)
		}
	}
	return w
}

// answeredBefore keeps the answers that came before t.
func (w answers) answeredBefore(t time.Time) answers {
	var out answers
	for _, a := range w {
		if a.sent.Add(a.took).Before(t) {
			out = append(out, a)
		}
	}
	return out
}

func (w answers) String() string {
	codes := w.codes()
	var longest time.Duration
	for _, a := range w {
		longest = max(longest, a.took)
	}
	var parts []string
	for _, c := range slices.Sorted(maps.Keys(codes)) {
		name := fmt.Sprint(c)
		if c == 0 {
			name = "no answer"
		}
		parts = append(parts, fmt.Sprintf("%s×%d", name, codes[c]))
	}
	return fmt.Sprintf("%d GETs: %s, longest %s", len(w), strings.Join(parts, " "), longest.Round(time.Millisecond))
}

// codes counts the answers by status (0: no answer).
func (w answers) codes() map[int]int {
	codes := map[int]int{}
	for _, a := range w {
		codes[a.code]++
	}
	return codes
}

// latencies are the answers' times, shortest first; it fails the spec
// when there are none.
func (w answers) latencies() []time.Duration {
	gomega.ExpectWithOffset(1, w).NotTo(gomega.BeEmpty(), "answers")
	l := make([]time.Duration, len(w))
	for i, a := range w {
		l[i] = a.took
	}
	slices.Sort(l)
	return l
}

// failing lists, for a failure message, the answers bad says are wrong.
func (w answers) failing(bad func(probeAnswer) bool) []string {
	var out []string
	for _, a := range w {
		if bad(a) {
			out = append(out, fmt.Sprintf("%s: %d after %s %s", a.sent.Format("15:04:05.000"), a.code, a.took.Round(time.Millisecond), a.what))
		}
	}
	return out
}

// expectAll: there are answers, and each is code within bound.
func (w answers) expectAll(code int, bound time.Duration) {
	gomega.ExpectWithOffset(1, w).NotTo(gomega.BeEmpty(), "answers in the window")
	gomega.ExpectWithOffset(1, w.failing(func(a probeAnswer) bool { return a.code != code || a.took > bound })).
		To(gomega.BeEmpty(), "answers other than %d within %s", code, bound)
}

// expectNone: no answer is code.
func (w answers) expectNone(code int) {
	gomega.ExpectWithOffset(1, w.failing(func(a probeAnswer) bool { return a.code == code })).To(gomega.BeEmpty(), "answers %d", code)
}

// expectWithin: there are answers, and each came within bound.
func (w answers) expectWithin(bound time.Duration) {
	gomega.ExpectWithOffset(1, w).NotTo(gomega.BeEmpty(), "answers in the window")
	gomega.ExpectWithOffset(1, w.failing(func(a probeAnswer) bool { return a.took > bound })).To(gomega.BeEmpty(), "answers slower than %s", bound)
}

// backAfter is how long after t the answers turned 200 for good: the send
// time of the first 200 sent at or after t that only 200s follow. It is
// -1 when the last answer is not a 200.
func backAfter(all []probeAnswer, t time.Time) time.Duration {
	back := time.Duration(-1)
	for _, a := range all {
		if a.sent.Before(t) {
			continue
		}
		switch {
		case a.code != 200:
			back = -1
		case back < 0:
			back = a.sent.Sub(t)
		}
	}
	return back
}

func describeBack(d time.Duration) string {
	if d < 0 {
		return "never, within the run"
	}
	return d.Round(time.Millisecond).String()
}

// report prints one fault's answers through ours and through vanilla.
func report(fault string, ours, vanilla answers) {
	ginkgo.GinkgoWriter.Printf("%s: through A (ours) %s; through V (vanilla v1.36.3) %s\n", fault, ours, vanilla)
}
