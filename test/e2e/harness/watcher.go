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

package harness

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"sync"
	"time"
)

// Watcher watches one collection through one server as a plain client
// would without client-go: HTTP/1.1 and no health check of its own, so it
// learns that a stream ended only from the stream. Across ends it resumes
// from the last resourceVersion it saw, and lists again when that is too
// old (410). It records what it saw, to check that no object was lost or
// seen twice, and in what order.
type Watcher struct {
	client *http.Client
	url    string // the collection

	mu sync.Mutex
	// seen counts, per object name, the ADDED events and list items.
	seen map[string]int
	// lastAdded is the resourceVersion of the last ADDED object or list:
	// an ADDED event at or below it is out of order.
	lastAdded  int64
	outOfOrder []string
	opened     int         // streams that answered 200
	ends       []time.Time // when each of them ended
	endErrs    []string    // how ("EOF": a complete response)
	lists      int
	rv         string
}

// NewWatcher watches the collection at path (such as
// /apis/batch/v1/namespaces/x/jobs) of s as the cluster's administrator.
func NewWatcher(s *Server, path string) (*Watcher, error) {
	pki := s.cluster.PKI
	cert, err := tls.LoadX509KeyPair(pki.AdminCert, pki.AdminKey)
	if err != nil {
		return nil, err
	}
	ca, err := os.ReadFile(pki.CAFile)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(ca) {
		return nil, fmt.Errorf("no certificate in %s", pki.CAFile)
	}
	// No HTTP/2, so no pings; a timeout for response headers only.
	t := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, Certificates: []tls.Certificate{cert}}, DialContext: s.cluster.Dial,
		ResponseHeaderTimeout: 15 * time.Second}
	return &Watcher{client: &http.Client{Transport: t}, url: s.URL + path, seen: map[string]int{}}, nil
}

// Run watches until ctx ends. A failed attempt is tried again 250 ms later.
func (w *Watcher) Run(ctx context.Context) {
	for ctx.Err() == nil {
		w.mu.Lock()
		rv := w.rv
		w.mu.Unlock()
		if rv != "" && w.stream(ctx, rv) {
			continue
		}
		if err := w.list(ctx); err != nil {
			Pause(ctx, 250*time.Millisecond)
		}
	}
}

type watchEvent struct {
	Type   string `json:"type"`
	Object struct {
		Code     int `json:"code"` // of an ERROR's Status
		Metadata struct {
			Name            string `json:"name"`
			ResourceVersion string `json:"resourceVersion"`
		} `json:"metadata"`
	} `json:"object"`
}

// stream follows one watch from rv; false when rv is too old.
func (w *Watcher) stream(ctx context.Context, rv string) bool {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, w.url+"?watch=1&allowWatchBookmarks=true&resourceVersion="+rv, nil)
	if err != nil {
		return false
	}
	resp, err := w.client.Do(req)
	if err != nil {
		Pause(ctx, 250*time.Millisecond)
		return true
	}
	defer resp.Body.Close()
	if resp.StatusCode == http.StatusGone {
		return false
	}
	if resp.StatusCode != http.StatusOK {
		_, _ = io.Copy(io.Discard, resp.Body)
		Pause(ctx, 250*time.Millisecond)
		return true
	}
	w.mu.Lock()
	w.opened++
	w.mu.Unlock()
	dec := json.NewDecoder(resp.Body)
	for {
		var ev watchEvent
		if err := dec.Decode(&ev); err != nil {
			if ctx.Err() == nil {
				w.mu.Lock()
				w.ends, w.endErrs = append(w.ends, time.Now()), append(w.endErrs, err.Error())
				w.mu.Unlock()
			}
			return true
		}
		if ev.Type == "ERROR" && ev.Object.Code == http.StatusGone {
			return false
		}
		w.record(ev)
	}
}

func (w *Watcher) record(ev watchEvent) {
	w.mu.Lock()
	defer w.mu.Unlock()
	md := ev.Object.Metadata
	if md.ResourceVersion != "" {
		w.rv = md.ResourceVersion
	}
	if ev.Type != "ADDED" {
		return
	}
	w.seen[md.Name]++
	rv, _ := strconv.ParseInt(md.ResourceVersion, 10, 64)
	if rv <= w.lastAdded {
		w.outOfOrder = append(w.outOfOrder, fmt.Sprintf("%s at %d after %d", md.Name, rv, w.lastAdded))
	}
	w.lastAdded = rv
}

// list reads the collection: objects not seen yet count as seen once, and
// the next watch starts from the list's resourceVersion.
func (w *Watcher) list(ctx context.Context) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, w.url, nil)
	if err != nil {
		return err
	}
	resp, err := w.client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("list %s: %d", w.url, resp.StatusCode)
	}
	var l struct {
		Metadata struct {
			ResourceVersion string `json:"resourceVersion"`
		} `json:"metadata"`
		Items []struct {
			Metadata struct {
				Name string `json:"name"`
			} `json:"metadata"`
		} `json:"items"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&l); err != nil {
		return err
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, it := range l.Items {
		if w.seen[it.Metadata.Name] == 0 {
			w.seen[it.Metadata.Name] = 1
		}
	}
	w.rv = l.Metadata.ResourceVersion
	w.lastAdded, _ = strconv.ParseInt(w.rv, 10, 64)
	w.lists++
	return nil
}

// WatcherState is what a Watcher recorded so far.
type WatcherState struct {
	// Opened counts the streams that answered 200; Ends says when each
	// ended and EndErrs how ("EOF": a complete response).
	Opened  int
	Ends    []time.Time
	EndErrs []string
	// Lists counts the lists (the first, and one per 410).
	Lists int
}

// State is a copy of what w recorded.
func (w *Watcher) State() WatcherState {
	w.mu.Lock()
	defer w.mu.Unlock()
	return WatcherState{Opened: w.opened, Ends: append([]time.Time(nil), w.ends...),
		EndErrs: append([]string(nil), w.endErrs...), Lists: w.lists}
}

// Check lists the names of want that w did not see exactly once, and the
// objects it saw out of order.
func (w *Watcher) Check(want []string) (notOnce, outOfOrder []string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, n := range want {
		if c := w.seen[n]; c != 1 {
			notOnce = append(notOnce, fmt.Sprintf("%s seen %d times", n, c))
		}
	}
	return notOnce, append([]string(nil), w.outOfOrder...)
}

// Pause waits d, or less if ctx ends first.
func Pause(ctx context.Context, d time.Duration) {
	select {
	case <-ctx.Done():
	case <-time.After(d):
	}
}
