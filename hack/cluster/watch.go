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
	"net/http"
	"time"
)

// watch keeps one watch of a collection open through target t while on()
// holds: it lists to learn a resourceVersion, watches from it, and after
// each end watches again from the last event's, listing again when the
// server says that version is gone. Each list and each watch opened is
// one request of the tally.
func (l *load) watch(ctx context.Context, t target, path string, on func() bool) {
	rv := ""
	for ctx.Err() == nil {
		if !on() {
			select {
			case <-ctx.Done():
			case <-time.After(time.Second):
			}
			continue
		}
		if rv == "" {
			rv = l.listVersion(ctx, t, path)
			if rv == "" {
				pause(ctx, time.Second)
				continue
			}
		}
		next, gone := l.watchOnce(ctx, t, path, rv)
		switch {
		case gone:
			rv = ""
		case next == rv:
			pause(ctx, time.Second) // the watch did not open: do not spin
		default:
			rv = next
		}
	}
}

// listVersion lists the collection and returns its resourceVersion ("" if
// the list did not answer).
func (l *load) listVersion(ctx context.Context, t target, path string) string {
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, t.URL+path+"?limit=1", nil)
	resp, err := l.client.Do(req)
	if ctx.Err() != nil {
		return ""
	}
	o, sample := classify(resp, err, "list "+path)
	l.record(t, o, sample)
	if o != answered {
		if resp != nil {
			resp.Body.Close()
		}
		return ""
	}
	defer resp.Body.Close()
	var list struct {
		Metadata struct {
			ResourceVersion string `json:"resourceVersion"`
		} `json:"metadata"`
	}
	if json.NewDecoder(resp.Body).Decode(&list) != nil {
		return ""
	}
	return list.Metadata.ResourceVersion
}

// watchOnce watches from rv until the stream ends (at most a minute, as
// the server's own timeout would) and returns the last resourceVersion
// seen, and whether the server answered that rv is gone (410).
func (l *load) watchOnce(ctx context.Context, t target, path, rv string) (last string, gone bool) {
	ctx, cancel := context.WithTimeout(ctx, 70*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet,
		t.URL+path+"?watch=1&allowWatchBookmarks=true&timeoutSeconds=60&resourceVersion="+rv, nil)
	resp, err := l.watcher.Do(req)
	if ctx.Err() != nil && resp == nil {
		return rv, false
	}
	o, sample := classify(resp, err, "watch "+path)
	l.record(t, o, sample)
	if o != answered {
		if resp != nil {
			gone = resp.StatusCode == http.StatusGone
			resp.Body.Close()
		}
		return rv, gone
	}
	defer resp.Body.Close()
	dec := json.NewDecoder(resp.Body)
	last = rv
	for {
		var ev struct {
			Type   string `json:"type"`
			Object struct {
				Code     int `json:"code"`
				Metadata struct {
					ResourceVersion string `json:"resourceVersion"`
				} `json:"metadata"`
			} `json:"object"`
		}
		if dec.Decode(&ev) != nil {
			return last, false
		}
		if ev.Type == "ERROR" {
			return last, ev.Object.Code == http.StatusGone
		}
		if v := ev.Object.Metadata.ResourceVersion; v != "" {
			last = v
		}
	}
}

func pause(ctx context.Context, d time.Duration) {
	select {
	case <-ctx.Done():
	case <-time.After(d):
	}
}
