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

// Package peers is the peer table's data: an immutable Snapshot of the
// cluster's kube-apiservers (their identity leases, addresses, liveness and
// what each serves), built by BuildSnapshot from listed objects, and the
// names and labels of identity leases and StorageVersions. It imports no
// other package of ours; peertable keeps a Snapshot current.
package peers
