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
	"archive/tar"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// write builds the image from the tree and writes it, tagged with every
// -ref, as one tarball.
func write(o options, files tree, created time.Time) error {
	refs := map[name.Reference]v1.Image{}
	img, err := image(o, files, created)
	if err != nil {
		return err
	}
	for _, r := range o.refs {
		tag, err := name.NewTag(r)
		if err != nil {
			return fmt.Errorf("-ref %q: %w", r, err)
		}
		refs[tag] = img
	}
	tmp := o.out + ".tmp"
	if err := tarball.MultiRefWriteToFile(tmp, refs); err != nil {
		os.Remove(tmp)
		return err
	}
	return os.Rename(tmp, o.out)
}

func image(o options, files tree, created time.Time) (v1.Image, error) {
	layer, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		return layerReader(files, created), nil
	}, tarball.WithMediaType(types.OCILayer))
	if err != nil {
		return nil, err
	}
	img := mutate.MediaType(empty.Image, types.OCIManifestSchema1)
	img = mutate.ConfigMediaType(img, types.OCIConfigJSON)
	img, err = mutate.Append(img, mutate.Addendum{Layer: layer, History: v1.History{
		Created: v1.Time{Time: created}, CreatedBy: "hack/packaging/cmd/nodeimage",
	}})
	if err != nil {
		return nil, err
	}
	cfg, err := img.ConfigFile()
	if err != nil {
		return nil, err
	}
	cfg = cfg.DeepCopy()
	cfg.Created = v1.Time{Time: created}
	cfg.OS, cfg.Architecture = "linux", "amd64"
	cfg.Config.Entrypoint = o.entrypoint
	cfg.Config.Cmd = o.cmd
	cfg.Config.Env = o.envs
	cfg.Config.User = o.user
	cfg.Config.WorkingDir = o.workdir
	return mutate.ConfigFile(img, cfg)
}

// layerReader streams the layer's tar; every header field is fixed, so the
// bytes depend only on the files and the time.
func layerReader(files tree, mtime time.Time) io.ReadCloser {
	pr, pw := io.Pipe()
	go func() { pw.CloseWithError(writeLayer(pw, files, mtime)) }()
	return pr
}

func writeLayer(w io.Writer, files tree, mtime time.Time) error {
	tw := tar.NewWriter(w)
	for _, e := range files.sorted() {
		name := e.path[1:]
		h := &tar.Header{Name: name, Mode: int64(e.mode.Perm()), ModTime: mtime, Format: tar.FormatPAX}
		if e.mode&os.ModeSticky != 0 {
			h.Mode |= 0o1000
		}
		switch {
		case e.dir:
			h.Typeflag, h.Name = tar.TypeDir, name+"/"
		case e.target != "":
			h.Typeflag, h.Linkname = tar.TypeSymlink, e.target
		default:
			if err := addFile(tw, h, e.src); err != nil {
				return err
			}
			continue
		}
		if err := tw.WriteHeader(h); err != nil {
			return err
		}
	}
	return tw.Close()
}

func addFile(tw *tar.Writer, h *tar.Header, src string) error {
	f, err := os.Open(src)
	if err != nil {
		return err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return err
	}
	h.Typeflag, h.Size = tar.TypeReg, fi.Size()
	if err := tw.WriteHeader(h); err != nil {
		return err
	}
	_, err = io.Copy(tw, f)
	return err
}
