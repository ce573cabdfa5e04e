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
	"net/http"
	"os"
	"slices"
	"time"

	"github.com/onsi/ginkgo/v2"
	"github.com/onsi/gomega"
)

// freezeLoad is how long the frozen-proxy spec keeps load on A:
// $MVP_E2E_FREEZE_LOAD (a Go duration), 5m by default.
func freezeLoad() time.Duration {
	if v := os.Getenv("MVP_E2E_FREEZE_LOAD"); v != "" {
		d, err := time.ParseDuration(v)
		gomega.Expect(err).NotTo(gomega.HaveOccurred(), "MVP_E2E_FREEZE_LOAD=%s", v)
		return d
	}
	return 5 * time.Minute
}

// timedAnswer is one request's status code (0 when it got none) and how long
// it took.
type timedAnswer struct {
	code    int
	latency time.Duration
}

// steadyGets sends a GET of url through client every interval, each on its
// own, until the returned stop is called. stop collects answers until none
// has come for 15s and returns them all.
func steadyGets(client *http.Client, url string, interval time.Duration) (stop func() []timedAnswer) {
	answers := make(chan timedAnswer, 10000)
	quit, done := make(chan struct{}), make(chan struct{})
	go func() {
		defer ginkgo.GinkgoRecover()
		defer close(done)
		tick := time.NewTicker(interval)
		defer tick.Stop()
		for {
			select {
			case <-quit:
				return
			case <-tick.C:
				go func() {
					start := time.Now()
					code, _, err := do(client, url, nil)
					if err != nil {
						code = 0
					}
					answers <- timedAnswer{code, time.Since(start)}
				}()
			}
		}
	}()
	return func() []timedAnswer {
		close(quit)
		<-done
		var all []timedAnswer
		for {
			select {
			case a := <-answers:
				all = append(all, a)
			case <-time.After(15 * time.Second):
				return all
			}
		}
	}
}

// summarize counts answers by status code and returns their latencies in
// ascending order; it fails the spec when there are none.
func summarize(answers []timedAnswer) (map[int]int, []time.Duration) {
	gomega.Expect(answers).NotTo(gomega.BeEmpty(), "answers")
	codes := map[int]int{}
	latencies := make([]time.Duration, 0, len(answers))
	for _, a := range answers {
		codes[a.code]++
		latencies = append(latencies, a.latency)
	}
	slices.Sort(latencies)
	return codes, latencies
}
