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
	"reflect"

	apidiscoveryv2 "k8s.io/api/apidiscovery/v2"
)

// Every server lists the same CRDs and most of the same built-in groups,
// so a document just read is mostly equal to documents already held: the
// same server's previous read and this server's own. Sharing the equal
// parts holds each group's versions (and each OpenAPI URL) once instead
// of once per server; with 2,000 CRDs a decoded /apis is a few MB. Held
// documents are never modified, so sharing needs no locking; only what
// was just decoded, not yet visible to any reader, is pointed at them.

// shareGroups points each of groups' versions at an equal group's
// versions in held (the first held list that has the group wins).
func shareGroups(groups []apidiscoveryv2.APIGroupDiscovery, held ...[]apidiscoveryv2.APIGroupDiscovery) {
	byName := map[string][]apidiscoveryv2.APIVersionDiscovery{}
	for _, list := range held {
		for i := range list {
			if _, ok := byName[list[i].Name]; !ok {
				byName[list[i].Name] = list[i].Versions
			}
		}
	}
	for i := range groups {
		if v, ok := byName[groups[i].Name]; ok && reflect.DeepEqual(groups[i].Versions, v) {
			groups[i].Versions = v
		}
	}
}

// shareURLs replaces each of paths' URLs with an equal string from held
// (maps from OpenAPI v3 paths to URLs).
func shareURLs(paths map[string]string, held ...map[string]string) {
	for p, u := range paths {
		for _, h := range held {
			if hu, ok := h[p]; ok && hu == u {
				paths[p] = hu
				break
			}
		}
	}
}
