package oci

import (
	"context"
	"fmt"
	"runtime"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// Spec is one image to build and push.
type Spec struct {
	Base      *Ref   // base image; nil starts from scratch
	Target    Ref    // where to push (a tag)
	LayerFile string // gzip-compressed layer tar (WriteLayerFile)
	Labels    map[string]string
	// Annotations go on the manifest.
	Annotations map[string]string
	CreatedBy   string // history of the new layer
	Comment     string
	Created     time.Time
	// Overwrite allows replacing an existing tag; when false an existing
	// tag fails with ErrTagExists (checked right before the push).
	Overwrite bool
}

// Result describes a pushed image.
type Result struct {
	Digest    string // manifest digest, "sha256:..."
	Layers    int
	MediaType string
}

// Build pulls the base image (or starts from scratch), converts it to OCI
// media types, appends the layer with its history, sets the labels and
// pushes the image to Target.
func (b *Builder) Build(ctx context.Context, s Spec) (Result, error) {
	var res Result
	target, err := b.parse(s.Target)
	if err != nil {
		return res, err
	}
	img, hist, err := b.base(ctx, s.Base)
	if err != nil {
		return res, err
	}
	layer, err := tarball.LayerFromFile(s.LayerFile, tarball.WithMediaType(types.OCILayer))
	if err != nil {
		return res, err
	}
	created := v1.Time{Time: s.Created.UTC().Truncate(time.Second)}
	h := v1.History{Created: created, CreatedBy: s.CreatedBy, Comment: s.Comment}
	if img, err = mutate.Append(img, mutate.Addendum{Layer: layer, History: h}); err != nil {
		return res, err
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return res, err
	}
	cf = cf.DeepCopy()
	cf.History = append(hist, h)
	cf.Created = created
	if len(s.Labels) > 0 && cf.Config.Labels == nil {
		cf.Config.Labels = map[string]string{}
	}
	for k, v := range s.Labels {
		cf.Config.Labels[k] = v
	}
	if img, err = mutate.ConfigFile(img, cf); err != nil {
		return res, err
	}
	if len(s.Annotations) > 0 {
		img = mutate.Annotations(img, s.Annotations).(v1.Image)
	}
	if !s.Overwrite {
		exists, err := b.Exists(ctx, s.Target)
		if err != nil {
			return res, err
		}
		if exists {
			return res, fmt.Errorf("%w: %s", ErrTagExists, s.Target.Name)
		}
	}
	if err := remote.Write(target, img, b.options(ctx, target, s.Target.Embedded)...); err != nil {
		return res, classify(ErrPush, err)
	}
	d, err := img.Digest()
	if err != nil {
		return res, err
	}
	layers, _ := img.Layers()
	return Result{Digest: d.String(), Layers: len(layers), MediaType: string(types.OCIManifestSchema1)}, nil
}

// base returns the base image with OCI media types (or an empty OCI image
// for scratch) and its history.
func (b *Builder) base(ctx context.Context, r *Ref) (v1.Image, []v1.History, error) {
	img := mutate.ConfigMediaType(mutate.MediaType(empty.Image, types.OCIManifestSchema1), types.OCIConfigJSON)
	if r == nil {
		cf := &v1.ConfigFile{OS: "linux", Architecture: runtime.GOARCH, RootFS: v1.RootFS{Type: "layers"}}
		img, err := mutate.ConfigFile(img, cf)
		return img, nil, err
	}
	ref, err := b.parse(*r)
	if err != nil {
		return nil, nil, err
	}
	platform := v1.Platform{OS: "linux", Architecture: runtime.GOARCH}
	src, err := remote.Image(ref, append(b.options(ctx, ref, r.Embedded), remote.WithPlatform(platform))...)
	if err != nil {
		return nil, nil, classify(ErrPullBase, err)
	}
	cf, err := src.ConfigFile()
	if err != nil {
		return nil, nil, classify(ErrPullBase, err)
	}
	cf = cf.DeepCopy()
	hist := cf.History
	cf.RootFS.DiffIDs, cf.History = nil, nil
	if img, err = mutate.ConfigFile(img, cf); err != nil {
		return nil, nil, err
	}
	layers, err := src.Layers()
	if err != nil {
		return nil, nil, classify(ErrPullBase, err)
	}
	adds := make([]mutate.Addendum, len(layers))
	for i, l := range layers {
		mt, err := l.MediaType()
		if err != nil {
			return nil, nil, classify(ErrPullBase, err)
		}
		adds[i] = mutate.Addendum{Layer: l, MediaType: ociLayerType(mt)}
	}
	img, err = mutate.Append(img, adds...)
	return img, alignHistory(hist, len(layers), cf.Created), err
}

// alignHistory makes a base's history describe its layers one to one, as
// the image spec asks (the entries without empty_layer, in order, are the
// layers'): images built by some tools have less history than layers, or
// none, and appending the snapshot's entry to that would describe the
// wrong layer. Missing entries are added in front (the older layers),
// marked as having none; surplus ones, the oldest first, are marked
// empty_layer. This is what BuildKit does to a base in the same case.
func alignHistory(hist []v1.History, layers int, created v1.Time) []v1.History {
	n := 0
	for _, h := range hist {
		if !h.EmptyLayer {
			n++
		}
	}
	if n == layers {
		return hist
	}
	out := make([]v1.History, 0, len(hist)+max(layers-n, 0))
	for range layers - n {
		out = append(out, v1.History{Created: created, Comment: "base image layer without history"})
	}
	for _, h := range hist {
		if !h.EmptyLayer && n > layers {
			h.EmptyLayer = true
			n--
		}
		out = append(out, h)
	}
	return out
}

// ociLayerType is the OCI media type of a layer media type (the blob is
// the same).
func ociLayerType(mt types.MediaType) types.MediaType {
	switch mt {
	case types.DockerLayer:
		return types.OCILayer
	case types.DockerUncompressedLayer:
		return types.OCIUncompressedLayer
	case types.DockerForeignLayer:
		return types.OCIRestrictedLayer
	}
	return mt
}
