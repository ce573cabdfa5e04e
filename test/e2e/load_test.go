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
	"os"
	"time"

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
