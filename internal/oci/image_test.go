package oci

import (
	"context"
	"errors"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/google/go-containerregistry/pkg/v1/validate"

	"github.com/snapstack/snapstack/internal/registry"
)

// testRegistry is the embedded registry served over real HTTP on
// loopback (reached as an external registry) and in-process.
func testRegistry(t *testing.T, opts registry.Options) (*registry.Registry, string) {
	t.Helper()
	g, err := registry.New(t.TempDir(), opts)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(g)
	t.Cleanup(srv.Close)
	return g, strings.TrimPrefix(srv.URL, "http://")
}

func layerFile(t *testing.T, files map[string]string) string {
	t.Helper()
	root := t.TempDir()
	for p, body := range files {
		write(t, root, p, body, 0o644)
	}
	dst := filepath.Join(t.TempDir(), "layer.tar.gz")
	if _, err := WriteLayerFile(context.Background(), dst, root, nil); err != nil {
		t.Fatal(err)
	}
	return dst
}

func pullImage(t *testing.T, ref string, opts ...remote.Option) v1.Image {
	t.Helper()
	r, err := name.ParseReference(ref)
	if err != nil {
		t.Fatal(err)
	}
	img, err := remote.Image(r, opts...)
	if err != nil {
		t.Fatal(err)
	}
	if err := validate.Image(img); err != nil {
		t.Fatalf("validate %s: %v", ref, err)
	}
	return img
}

func checkOCI(t *testing.T, img v1.Image, layers int) {
	t.Helper()
	m, err := img.Manifest()
	if err != nil {
		t.Fatal(err)
	}
	if m.MediaType != types.OCIManifestSchema1 || m.Config.MediaType != types.OCIConfigJSON || len(m.Layers) != layers {
		t.Fatalf("manifest %s config %s layers %d", m.MediaType, m.Config.MediaType, len(m.Layers))
	}
	for _, l := range m.Layers {
		if l.MediaType != types.OCILayer {
			t.Errorf("layer media type %s", l.MediaType)
		}
	}
}

func TestBuildScratchLabelsHistory(t *testing.T) {
	_, host := testRegistry(t, registry.Options{})
	b := NewBuilder(Config{})
	created := time.Date(2026, 11, 23, 2, 0, 0, 0, time.UTC)
	res, err := b.Build(context.Background(), Spec{
		Target: Ref{Name: host + "/ns/repo:v1"}, LayerFile: layerFile(t, map[string]string{"hello.txt": "hi"}),
		Labels: map[string]string{"k1": "v1"}, Annotations: map[string]string{"org.opencontainers.image.description": "d"},
		CreatedBy: "snapshot snp-1", Comment: "desc", Created: created,
	})
	if err != nil {
		t.Fatal(err)
	}
	img := pullImage(t, host+"/ns/repo:v1")
	checkOCI(t, img, 1)
	if d, _ := img.Digest(); d.String() != res.Digest || res.Layers != 1 {
		t.Errorf("result %+v, pulled %s", res, d)
	}
	cf, _ := img.ConfigFile()
	if cf.Config.Labels["k1"] != "v1" || len(cf.History) != 1 || cf.History[0].CreatedBy != "snapshot snp-1" || !cf.Created.Equal(created) || cf.OS != "linux" {
		t.Errorf("config = %+v", cf)
	}
	m, _ := img.Manifest()
	if m.Annotations["org.opencontainers.image.description"] != "d" {
		t.Errorf("annotations = %v", m.Annotations)
	}
}

// TestBuildOnDockerBase builds on a base with Docker media types pushed
// to one repository, into another, in-process: every layer ends up OCI.
func TestBuildOnDockerBase(t *testing.T) {
	g, _ := testRegistry(t, registry.Options{})
	b := NewBuilder(Config{Embedded: g.Transport()})
	tr := remote.WithTransport(g.Transport())
	base, _ := random.Image(512, 2)
	ref, _ := name.ParseReference("snapstack.local:1/base/img:v1")
	if err := remote.Write(ref, base, tr); err != nil {
		t.Fatal(err)
	}
	if mt, _ := base.MediaType(); mt != types.DockerManifestSchema2 {
		t.Fatalf("base media type %s", mt)
	}
	ctx := context.Background()
	spec := Spec{Base: &Ref{Name: "snapstack.local:1/base/img:v1", Embedded: true}, Target: Ref{Name: "snapstack.local:1/ns/snap:v1", Embedded: true},
		LayerFile: layerFile(t, map[string]string{"a": "1"}), Created: time.Now()}
	res, err := b.Build(ctx, spec)
	if err != nil {
		t.Fatal(err)
	}
	img := pullImage(t, "snapstack.local:1/ns/snap:v1", tr)
	checkOCI(t, img, 3)
	if res.Layers != 3 {
		t.Errorf("layers = %d", res.Layers)
	}
	baseLayers, _ := base.Layers()
	got, _ := img.Layers()
	for i, l := range baseLayers {
		d1, _ := l.Digest()
		d2, _ := got[i].Digest()
		if d1 != d2 {
			t.Errorf("base layer %d digest %s, want %s", i, d2, d1)
		}
	}

	// Overwrite=false on an existing tag fails before pushing; true replaces.
	spec.LayerFile = layerFile(t, map[string]string{"b": "2"})
	if _, err := b.Build(ctx, spec); !errors.Is(err, ErrTagExists) {
		t.Fatalf("existing tag without Overwrite: %v", err)
	}
	if d, _ := pullImage(t, "snapstack.local:1/ns/snap:v1", tr).Digest(); d.String() != res.Digest {
		t.Fatal("the tag changed although Overwrite was false")
	}
	spec.Overwrite = true
	res2, err := b.Build(ctx, spec)
	if err != nil || res2.Digest == res.Digest {
		t.Fatalf("overwrite: %+v %v", res2, err)
	}
}

func TestBuildErrors(t *testing.T) {
	_, host := testRegistry(t, registry.Options{Authenticate: func(_ context.Context, u, p string) bool { return u == "u" && p == "p" }})
	ctx := context.Background()
	lf := layerFile(t, map[string]string{"a": "1"})
	spec := Spec{Target: Ref{Name: host + "/ns/repo:v1"}, LayerFile: lf}
	if _, err := NewBuilder(Config{}).Build(ctx, spec); !errors.Is(err, ErrDenied) {
		t.Errorf("push without credentials: %v", err)
	}
	good := NewBuilder(Config{Credentials: map[string]Credential{host: {Username: "u", Password: "p"}}})
	if _, err := good.Build(ctx, spec); err != nil {
		t.Errorf("push with credentials: %v", err)
	}
	spec.Base = &Ref{Name: host + "/ns/missing:v1"}
	if _, err := good.Build(ctx, spec); !errors.Is(err, ErrPullBase) {
		t.Errorf("missing base: %v", err)
	}
	if ok, err := good.Exists(ctx, Ref{Name: host + "/ns/repo:v1"}); !ok || err != nil {
		t.Errorf("Exists = %v %v", ok, err)
	}
	if ok, err := good.Exists(ctx, Ref{Name: host + "/ns/repo:nope"}); ok || err != nil {
		t.Errorf("Exists(missing) = %v %v", ok, err)
	}
}

// TestAlignHistory: the history of a base describes its layers one to one
// (the non-empty entries), whatever the base's tool wrote.
func TestAlignHistory(t *testing.T) {
	created := v1.Time{Time: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)}
	e := func(by string, empty bool) v1.History { return v1.History{CreatedBy: by, EmptyLayer: empty} }
	for _, tc := range []struct {
		name   string
		hist   []v1.History
		layers int
		want   string // CreatedBy of each entry ("-" for an added one), "e" after an empty one
	}{
		{"aligned", []v1.History{e("a", false), e("env", true), e("b", false)}, 2, "a env.e b"},
		{"none", nil, 2, "- -"},
		{"fewer", []v1.History{e("env", true), e("b", false)}, 3, "- - env.e b"},
		{"more", []v1.History{e("a", false), e("b", false), e("c", false)}, 1, "a.e b.e c"},
		{"no layers", []v1.History{e("env", true)}, 0, "env.e"},
	} {
		got := alignHistory(tc.hist, tc.layers, created)
		var parts []string
		nonEmpty := 0
		for _, h := range got {
			p := h.CreatedBy
			if p == "" {
				p = "-"
				if !h.Created.Equal(created.Time) {
					t.Errorf("%s: added entry created %v", tc.name, h.Created)
				}
			}
			if h.EmptyLayer {
				p += ".e"
			} else {
				nonEmpty++
			}
			parts = append(parts, p)
		}
		if s := strings.Join(parts, " "); s != tc.want || nonEmpty != tc.layers {
			t.Errorf("%s: history %q (%d non-empty), want %q (%d)", tc.name, s, nonEmpty, tc.want, tc.layers)
		}
	}
}

// TestBuildOnBaseWithoutHistory: a snapshot of a base whose config has no
// history gets one entry per layer, its own last.
func TestBuildOnBaseWithoutHistory(t *testing.T) {
	g, _ := testRegistry(t, registry.Options{})
	b := NewBuilder(Config{Embedded: g.Transport()})
	tr := remote.WithTransport(g.Transport())
	base, _ := random.Image(512, 2)
	cf, _ := base.ConfigFile()
	cf = cf.DeepCopy()
	cf.History = nil
	base, _ = mutate.ConfigFile(base, cf)
	ref, _ := name.ParseReference("snapstack.local:1/base/nohist:v1")
	if err := remote.Write(ref, base, tr); err != nil {
		t.Fatal(err)
	}
	spec := Spec{Base: &Ref{Name: "snapstack.local:1/base/nohist:v1", Embedded: true}, Target: Ref{Name: "snapstack.local:1/ns/snap:v1", Embedded: true},
		LayerFile: layerFile(t, map[string]string{"a": "1"}), CreatedBy: "snapshot snp-2", Created: time.Now()}
	if _, err := b.Build(context.Background(), spec); err != nil {
		t.Fatal(err)
	}
	img := pullImage(t, "snapstack.local:1/ns/snap:v1", tr)
	got, _ := img.ConfigFile()
	if len(got.History) != 3 || got.History[2].CreatedBy != "snapshot snp-2" {
		t.Fatalf("history %+v, want two base entries and the snapshot's", got.History)
	}
	for i, h := range got.History {
		if h.EmptyLayer {
			t.Errorf("history entry %d is empty_layer", i)
		}
	}
}
