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

package discovery

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"time"

	apidiscoveryv2 "k8s.io/api/apidiscovery/v2"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/kube-openapi/pkg/handler3"

	"github.com/mvp-apiserver/kube-apiserver/pkg/controlplane/peerproxy/peerclient"
)

// Discovery roots and the OpenAPI v3 root, as served by every kube-apiserver.
const (
	rootAPI     = "/api"
	rootAPIs    = "/apis"
	openAPIRoot = "/openapi/v3"
)

// acceptLocalDiscovery asks for a server's own aggregated discovery, never
// merged with its peers' (upstream 1.37 peers honour profile=nopeer; ours
// also honour the reroute markers sent with it).
const acceptLocalDiscovery = "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList;profile=nopeer"

// fetchTimeout bounds one peer fetch (three documents): a peer that
// sends them byte by byte holds a fetch no longer than this.
const fetchTimeout = 5 * time.Second

// maxDocumentBytes bounds one discovery document read from a peer, and so
// the memory a hostile or broken peer can make this server hold per
// fetch. A kube-apiserver's /apis with 2,000 CRDs is about 1 MiB.
const maxDocumentBytes = 16 << 20

// discoveryUser is the front-proxy identity discovery fetches carry: any
// authenticated user may read discovery (RBAC's system:discovery).
const discoveryUser = "system:kube-apiserver-peer-discovery"

// rootDoc is one aggregated discovery document and its ETag.
type rootDoc struct {
	groups []apidiscoveryv2.APIGroupDiscovery
	etag   string
}

// serverDocs is what one server's discovery looked like when last read.
// It is never modified once read: readers share it without locking.
type serverDocs struct {
	api, apis rootDoc
	// openAPI maps OpenAPI v3 paths ("apis/batch/v1") to their URLs.
	openAPI     map[string]string
	openAPIETag string
	// openAPISum identifies the root's last body: a server whose root's
	// ETag changes while its content does not (observed with many CRDs)
	// costs no rebuild.
	openAPISum [sha256.Size]byte
	fetchedAt  time.Time
	// changedAt is when a read last found a document changed;
	// openAPIReadAt when the OpenAPI v3 root was last read (both set by
	// peer reads only).
	changedAt, openAPIReadAt time.Time
}

// A peer answers its OpenAPI v3 root in full on every request: its
// aggregator serves it with Last-Modified set to the time of the request
// and no ETag, so a conditional request cannot save the 11 kB or more.
// The root lists the peer's group/versions, which change with its /api
// and /apis, so a peer's root is read when those change, at every refresh
// for openAPISettle after any change (a root can trail discovery), and
// otherwise every openAPIRefresh.
const (
	openAPISettle  = 30 * time.Second
	openAPIRefresh = 5 * time.Minute
)

// peerRootDue says whether a peer's OpenAPI v3 root is to be read at now,
// given the documents being read (next) and whether /api or /apis
// changed. Only the paths of group/versions this server does not serve
// are used from a peer's root, so it is not read while the peer lists
// none (servedHere says what this server serves; nil: not known yet).
// Serving its root makes a kube-apiserver build and keep the OpenAPI of
// every group/version it serves (with 2,000 CRDs, tens of MB): no root
// is asked for that is not needed.
func peerRootDue(now time.Time, servedHere func(schema.GroupVersion) bool) func(next *serverDocs, changed bool) bool {
	return func(next *serverDocs, changed bool) bool {
		if changed {
			next.changedAt = now
		}
		if servedHere != nil && !servesBeyond(next, servedHere) {
			return false
		}
		due := changed || now.Sub(next.changedAt) < openAPISettle || now.Sub(next.openAPIReadAt) >= openAPIRefresh
		if due {
			next.openAPIReadAt = now
		}
		return due
	}
}

// servesBeyond reports whether docs list a group/version servedHere
// does not.
func servesBeyond(docs *serverDocs, servedHere func(schema.GroupVersion) bool) bool {
	return anyVersion(docs, func(gv schema.GroupVersion, _ *apidiscoveryv2.APIVersionDiscovery) bool {
		return !servedHere(gv)
	})
}

// localRootDue says whether this server's own OpenAPI v3 root is to be
// read: only while merged discovery has group/versions only peers serve,
// the one case its merged root is served (see peerRootDue for why a root
// is not read needlessly). Unread, the documents hold no OpenAPI paths.
func localRootDue(wanted func() bool) func(next *serverDocs, changed bool) bool {
	return func(next *serverDocs, _ bool) bool {
		if wanted() {
			return true
		}
		next.openAPI, next.openAPIETag, next.openAPISum = nil, "", [sha256.Size]byte{}
		return false
	}
}

// getFunc sends a document request (its URL holds only the path).
type getFunc func(*http.Request) (*http.Response, error)

// inProcess serves document requests with h, this server's own handler.
func inProcess(h http.Handler) getFunc {
	return func(req *http.Request) (*http.Response, error) {
		rec := &recorder{header: http.Header{}}
		h.ServeHTTP(rec, req)
		return rec.response(), nil
	}
}

// fromPeer sends document requests to the peer at address over client,
// as discoveryUser in the front-proxy header userHeader, marked so that
// the peer answers from its own API.
func fromPeer(client *http.Client, userHeader, address string) getFunc {
	return func(req *http.Request) (*http.Response, error) {
		req.URL.Scheme, req.URL.Host = "https", address
		req.Header.Set(userHeader, discoveryUser)
		req.Header.Set(peerclient.HeaderRerouted, "true")
		req.Header.Set(peerclient.HeaderPeerProxied, "true")
		return client.Do(req)
	}
}

// readDocs reads the /api, /apis and OpenAPI v3 root documents with
// conditional requests; changed is false when all three were unchanged.
// With rootDue set, the root is read only when it says so (it is told
// whether /api or /apis changed); nil reads it every time. What is new
// shares what equals prev's or held's parts (held: another server's
// documents, or nil); see shareGroups.
func readDocs(ctx context.Context, get getFunc, prev, held *serverDocs, rootDue func(next *serverDocs, changed bool) bool) (*serverDocs, bool, error) {
	next := &serverDocs{}
	if prev != nil {
		*next = *prev
	}
	changed := prev == nil
	var heldAPI, heldAPIs []apidiscoveryv2.APIGroupDiscovery
	if held != nil {
		heldAPI, heldAPIs = held.api.groups, held.apis.groups
	}
	for _, root := range []struct {
		path string
		doc  *rootDoc
		held []apidiscoveryv2.APIGroupDiscovery
	}{{rootAPI, &next.api, heldAPI}, {rootAPIs, &next.apis, heldAPIs}} {
		c, err := readRoot(ctx, get, root.path, root.doc, prev != nil, root.held)
		if err != nil {
			return nil, false, err
		}
		changed = changed || c
	}
	if rootDue != nil && !rootDue(next, changed) {
		return next, changed, nil
	}
	c, err := readOpenAPIRoot(ctx, get, next)
	if err != nil {
		return nil, false, err
	}
	if c && held != nil {
		shareURLs(next.openAPI, held.openAPI)
	}
	if c && rootDue != nil {
		rootDue(next, true) // settle from this change too
	}
	return next, changed || c, nil
}

// readRoot refreshes doc from path; a 304 keeps it when it is not new. A
// new document shares the versions of groups equal to doc's previous ones
// or held's.
func readRoot(ctx context.Context, get getFunc, path string, doc *rootDoc, have bool, held []apidiscoveryv2.APIGroupDiscovery) (bool, error) {
	resp, body, err := getDoc(ctx, get, path, acceptLocalDiscovery, doc.etag)
	if err != nil {
		return false, err
	}
	if resp.StatusCode == http.StatusNotModified && have {
		return false, nil
	}
	if resp.StatusCode != http.StatusOK {
		return false, peerclient.BadResponsef("GET %s answered %d: %.200s", path, resp.StatusCode, body)
	}
	if ct := resp.Header.Get("Content-Type"); !strings.Contains(ct, "as=APIGroupDiscoveryList") || !strings.Contains(ct, "v=v2") {
		return false, peerclient.BadResponsef("GET %s answered %q, not aggregated discovery v2", path, ct)
	}
	var list apidiscoveryv2.APIGroupDiscoveryList
	if err := json.Unmarshal(body, &list); err != nil {
		return false, peerclient.BadResponsef("decoding %s: %v", path, err)
	}
	shareGroups(list.Items, doc.groups, held)
	*doc = rootDoc{groups: list.Items, etag: resp.Header.Get("ETag")}
	return true, nil
}

// readOpenAPIRoot refreshes docs' OpenAPI v3 paths; a 404 means OpenAPI v3
// is off on that server.
func readOpenAPIRoot(ctx context.Context, get getFunc, docs *serverDocs) (bool, error) {
	resp, body, err := getDoc(ctx, get, openAPIRoot, "application/json", docs.openAPIETag)
	if err != nil {
		return false, err
	}
	switch resp.StatusCode {
	case http.StatusNotModified:
		return false, nil
	case http.StatusNotFound:
		had := docs.openAPI != nil
		docs.openAPI, docs.openAPIETag = nil, ""
		return had, nil
	case http.StatusOK:
		docs.openAPIETag = resp.Header.Get("ETag")
		sum := sha256.Sum256(body)
		if docs.openAPI != nil && sum == docs.openAPISum {
			return false, nil
		}
		var root handler3.OpenAPIV3Discovery
		if err := json.Unmarshal(body, &root); err != nil {
			return false, peerclient.BadResponsef("decoding %s: %v", openAPIRoot, err)
		}
		prev := docs.openAPI
		docs.openAPI = make(map[string]string, len(root.Paths))
		for p, gv := range root.Paths {
			docs.openAPI[p] = gv.ServerRelativeURL
		}
		shareURLs(docs.openAPI, prev)
		docs.openAPISum = sum
		return true, nil
	default:
		return false, peerclient.BadResponsef("GET %s answered %d: %.200s", openAPIRoot, resp.StatusCode, body)
	}
}

// getDoc sends a conditional GET of one document and reads its body.
func getDoc(ctx context.Context, get getFunc, path, accept, etag string) (*http.Response, []byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, path, nil)
	if err != nil {
		return nil, nil, err
	}
	req.Header.Set("Accept", accept)
	if etag != "" {
		req.Header.Set("If-None-Match", etag)
	}
	resp, err := get(req)
	if err != nil {
		return nil, nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxDocumentBytes+1))
	if err == nil && len(body) > maxDocumentBytes {
		return nil, nil, peerclient.BadResponsef("GET %s answered a document larger than %d MiB", path, maxDocumentBytes>>20)
	}
	return resp, body, err
}

// recorder captures an in-process response.
type recorder struct {
	header http.Header
	code   int
	body   bytes.Buffer
}

func (r *recorder) Header() http.Header { return r.header }
func (r *recorder) WriteHeader(code int) {
	if r.code == 0 {
		r.code = code
	}
}
func (r *recorder) Write(b []byte) (int, error) {
	if r.code == 0 {
		r.code = http.StatusOK
	}
	return r.body.Write(b)
}
func (r *recorder) response() *http.Response {
	if r.code == 0 {
		r.code = http.StatusOK
	}
	return &http.Response{StatusCode: r.code, Header: r.header, Body: io.NopCloser(&r.body)}
}
