// Package engine is the data plane behind the snapshot core: it keeps a
// volume per disk, seals volumes into snapshots, uploads the changed
// chunks of a snapshot to the chunk store with its manifest, restores
// snapshots as lazily read bases hydrated in the background, and
// collects the chunks no manifest needs. It knows bytes, not API names.
//
// Layout under the data directory:
//
//	volumes/<disk ID>/            one volume (see package volume)
//	volumes/<disk ID>/parent-<snapshot>.manifest   the last uploaded content
//	volumes/<disk ID>/base-<snapshot>.manifest     the base being hydrated
//	blob store: manifests/<snapshot ID>, chunks/xx/<id>
package engine

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/snapstack/snapstack/internal/blob"
	"github.com/snapstack/snapstack/internal/chunk"
	"github.com/snapstack/snapstack/internal/ecs"
	"github.com/snapstack/snapstack/internal/manifest"
	"github.com/snapstack/snapstack/internal/volume"
)

// ChunkSize is the unit of upload, dedup and restore.
const ChunkSize = 1 << 20

// Errors of the engine.
var (
	// ErrNoDisk: the engine holds no volume for this disk.
	ErrNoDisk = errors.New("engine: no such disk")
	// ErrNoSnapshotData: no stored manifest (unknown, or not uploaded yet).
	ErrNoSnapshotData = errors.New("engine: snapshot has no stored data")
)

// maxWorkers bounds the goroutines of one upload or hydration, and so its
// memory: each holds a 1 MiB chunk buffer (plus, for uploads, the encoded
// object; hydration keeps two buffers per reader). On a 64-core host
// that is about 64-96 MiB per job instead of 0.5 GiB.
const maxWorkers = 32

// Engine implements ecs.Engine on volumes and a chunk store.
type Engine struct {
	dir     string
	blobs   blob.Backend
	chunks  *chunk.Store
	log     *slog.Logger
	workers int // goroutines per upload or hydration: 2 per P (serve runs 2 Ps per core), so that direct writes and flushes (which wait for the device) overlap CPU work; at most maxWorkers

	mu      sync.Mutex
	vols    map[string]*volume.Volume
	uploads map[string]context.CancelFunc // by snapshot ID
	// hydrations stops the hydration of a disk, by disk ID.
	hydrations map[string]*hydration
	// diskLocks: disk ID -> *sync.Mutex serialising the disk's restores
	// with each other and with the cleanup after its hydration.
	diskLocks sync.Map
	offline   func(diskID string)

	// gc keeps the collector apart from uploads: uploads hold it shared
	// from their first chunk until their manifest is stored.
	gc sync.RWMutex

	dedupMem atomic.Int64 // bytes of the uploads' dedup indexes (dedup.go)

	bg     context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

var _ ecs.Engine = (*Engine)(nil)

// New opens the engine on dir (volumes) and blobs (chunks, manifests),
// and resumes the hydration of restored volumes. Uploads compress new
// chunks with write.
func New(dir string, blobs blob.Backend, write chunk.Compression, log *slog.Logger) (*Engine, error) {
	cs, err := chunk.NewStore(blobs, write)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	bg, cancel := context.WithCancel(context.Background())
	e := &Engine{dir: dir, blobs: blobs, chunks: cs, log: log, workers: min(2*runtime.GOMAXPROCS(0), maxWorkers), vols: map[string]*volume.Volume{},
		uploads: map[string]context.CancelFunc{}, hydrations: map[string]*hydration{}, bg: bg, cancel: cancel}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	for _, ent := range entries {
		if !ent.IsDir() {
			continue
		}
		v, err := e.open(ent.Name())
		if err != nil {
			log.Error("open volume", "disk", ent.Name(), "err", err)
			continue
		}
		if v.BaseID() != "" {
			e.hydrate(ent.Name(), v)
		}
	}
	return e, nil
}

// OnOffline sets the function called when a disk stops being served
// (its instance stops, it is detached or deleted).
func (e *Engine) OnOffline(fn func(diskID string)) { e.offline = fn }

// DiskOffline tells whoever serves the disk to let go of it.
func (e *Engine) DiskOffline(diskID string) {
	if e.offline != nil {
		e.offline(diskID)
	}
}

func (e *Engine) volDir(diskID string) string { return filepath.Join(e.dir, diskID) }

// validID keeps IDs from escaping the data directory.
func validID(id string) bool {
	return id != "" && !strings.ContainsAny(id, "/\\") && id != "." && id != ".."
}

// open returns the open volume of a disk, opening it if needed.
func (e *Engine) open(diskID string) (*volume.Volume, error) {
	if !validID(diskID) {
		return nil, ErrNoDisk
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if v, ok := e.vols[diskID]; ok {
		return v, nil
	}
	dir := e.volDir(diskID)
	if _, err := os.Stat(filepath.Join(dir, "volume.json")); errors.Is(err, os.ErrNotExist) {
		return nil, ErrNoDisk
	}
	v, err := volume.Open(dir, e.opener(dir))
	if err != nil {
		return nil, err
	}
	e.vols[diskID] = v
	return v, nil
}

// Volume returns the block device of a disk (for NBD).
func (e *Engine) Volume(diskID string) (*volume.Volume, error) { return e.open(diskID) }

// CreateDisk makes the volume of a new disk, empty or with the content of
// snapshotID.
func (e *Engine) CreateDisk(ctx context.Context, diskID string, size int64, snapshotID string) error {
	if !validID(diskID) {
		return ErrNoDisk
	}
	dir := e.volDir(diskID)
	v, err := volume.Create(dir, size, e.opener(dir))
	if err != nil {
		return err
	}
	e.mu.Lock()
	e.vols[diskID] = v
	e.mu.Unlock()
	if snapshotID != "" {
		if err := e.RestoreDisk(ctx, diskID, snapshotID); err != nil {
			// No record names the disk yet: nothing else would remove it.
			e.DeleteDisk(context.WithoutCancel(ctx), diskID)
			return err
		}
	}
	return nil
}

// DeleteDisk closes and removes the volume of a disk. Its snapshots stay.
func (e *Engine) DeleteDisk(ctx context.Context, diskID string) error {
	if !validID(diskID) {
		return nil
	}
	e.DiskOffline(diskID)
	e.mu.Lock()
	v := e.vols[diskID]
	delete(e.vols, diskID)
	e.mu.Unlock()
	if v != nil {
		v.Close()
	}
	return os.RemoveAll(e.volDir(diskID))
}

// Close stops background work and closes every volume.
func (e *Engine) Close() error {
	e.cancel()
	e.wg.Wait()
	e.mu.Lock()
	defer e.mu.Unlock()
	var err error
	for id, v := range e.vols {
		err = errors.Join(err, v.Close())
		delete(e.vols, id)
	}
	return err
}

// manifestPrefix starts the blob name of every snapshot manifest.
const manifestPrefix = "manifests/"

func manifestName(snapshotID string) string { return manifestPrefix + snapshotID }

// loadManifest reads a snapshot's manifest from the blob store.
func (e *Engine) loadManifest(ctx context.Context, snapshotID string) (*manifest.Manifest, error) {
	raw, err := e.blobs.Get(ctx, manifestName(snapshotID))
	if err != nil {
		return nil, err
	}
	m, err := manifest.Decode(raw)
	if err != nil {
		return nil, fmt.Errorf("manifest of %s: %w", snapshotID, err)
	}
	return m, nil
}

// StoredSnapshots lists the snapshots whose manifest is stored.
func (e *Engine) StoredSnapshots(ctx context.Context) ([]string, error) {
	var ids []string
	err := e.blobs.List(ctx, manifestPrefix, func(name string) error {
		ids = append(ids, strings.TrimPrefix(name, manifestPrefix))
		return nil
	})
	return ids, err
}

// StoredDisks lists the disks that have a volume.
func (e *Engine) StoredDisks(ctx context.Context) ([]string, error) {
	entries, err := os.ReadDir(e.dir)
	if err != nil {
		return nil, err
	}
	var ids []string
	for _, ent := range entries {
		if ent.IsDir() && validID(ent.Name()) {
			ids = append(ids, ent.Name())
		}
	}
	return ids, nil
}

// DeleteSnapshot cancels an upload under way and deletes the manifest;
// the collector reclaims chunks no other manifest needs.
func (e *Engine) DeleteSnapshot(ctx context.Context, snapshotID string) error {
	e.mu.Lock()
	if cancel, ok := e.uploads[snapshotID]; ok {
		cancel()
	}
	e.mu.Unlock()
	return e.blobs.Delete(ctx, manifestName(snapshotID))
}
