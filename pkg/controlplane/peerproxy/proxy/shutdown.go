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

package proxy

import (
	"context"
	"io"
	"net/http"
	"sync"
	"sync/atomic"

	"k8s.io/apiserver/pkg/endpoints/request"
)

// watchEnder ends relayed watches when this server stops taking new
// requests, at the moment it ends its own.
//
// The generic server hands each watch its shutdown signal (the filter
// WithWatchTerminationDuringShutdown, installed when
// --shutdown-watch-termination-grace-period is above 0) and a local watch
// returns when it fires, so its client watches again on another server.
// A relayed watch is held open by its peer, not by this server's storage:
// without this it would run on until the HTTP server's shutdown timeout,
// its client never told. On the signal each relayed watch's request to its
// peer is cancelled, and its response ends as a complete one: the client
// sees its watch end, as for a local watch, not an error.
type watchEnder struct {
	once sync.Once
	// stopping is done once the server's shutdown signal fired.
	stopping context.Context
	stop     context.CancelFunc
}

func newWatchEnder() *watchEnder {
	ctx, cancel := context.WithCancel(context.Background())
	return &watchEnder{stopping: ctx, stop: cancel}
}

// track returns a context under ctx, a request's, that is cancelled when
// the server begins to stop, if ctx carries the server's shutdown signal,
// and marks a as ended by it then; release must be called when the watch
// is over. Waiting costs no goroutine per watch: one per server waits for
// the signal.
func (e *watchEnder) track(ctx context.Context, a *attempt) (_ context.Context, release func()) {
	sig := request.ServerShutdownSignalFrom(ctx)
	if sig == nil {
		return ctx, func() {}
	}
	e.once.Do(func() {
		go func() {
			<-sig.ShuttingDown()
			e.stop()
		}()
	})
	ctx, cancel := context.WithCancel(ctx)
	unhook := context.AfterFunc(e.stopping, func() {
		a.endedByShutdown.Store(true)
		cancel()
	})
	return ctx, func() {
		unhook()
		cancel()
	}
}

// endAtShutdown makes a relayed watch's response read as complete once the
// server's shutdown cancelled it, so the reverse proxy ends the response
// instead of aborting it.
func endAtShutdown(resp *http.Response) error {
	if a, ok := resp.Request.Context().Value(attemptKey{}).(*attempt); ok {
		resp.Body = &shutdownEndedBody{ReadCloser: resp.Body, ended: &a.endedByShutdown}
	}
	return nil
}

type shutdownEndedBody struct {
	io.ReadCloser
	ended *atomic.Bool
}

func (b *shutdownEndedBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if err != nil && b.ended.Load() {
		return n, io.EOF
	}
	return n, err
}
