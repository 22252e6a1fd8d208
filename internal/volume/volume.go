package volume

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"sync"

	"github.com/snapstack/snapstack/internal/atomicfile"
)

// Errors of the volume.
var (
	ErrRange    = errors.New("volume: out of range")
	ErrClosed   = errors.New("volume: closed")
	ErrNoLayer  = errors.New("volume: no sealed layer for this snapshot")
	ErrBaseLost = errors.New("volume: base unavailable")
	// ErrBaseChanged: Hydrate was asked for a base the volume no longer
	// reads through.
	ErrBaseChanged = errors.New("volume: the base changed")
	// ErrFailed wraps the error that put a layer or the volume out of
	// service: an fsync that failed (whose data Linux may have dropped
	// while reporting later fsyncs as successful), or a change of the
	// chain that may or may not be durable. It is returned until the
	// volume is opened again, from what is durable.
	ErrFailed = errors.New("volume: an earlier flush failed; reopen the volume")
)

// Base is a read-only bottom of the chain (a snapshot in the chunk store).
type Base interface {
	// ReadAt fills p with the base's content at off (zeroes where it has
	// none). It is safe for concurrent use.
	ReadAt(p []byte, off int64) error
	Close() error
}

// BaseBulkReader is implemented by a Base with a cheaper read for
// hydration, which reads each chunk once: ReadBulk fills p like ReadAt
// but need not keep what it read for later reads.
type BaseBulkReader interface {
	ReadBulk(p []byte, off int64) error
}

// BaseOpener opens the base named by a snapshot ID.
type BaseOpener func(snapshotID string) (Base, error)

type layerInfo struct {
	File     string `json:"file"`
	Snapshot string `json:"snapshot,omitempty"` // set when sealed
	Uploaded bool   `json:"uploaded,omitempty"`
}

// state is volume.json.
type state struct {
	Size   int64       `json:"size"`
	Layers []layerInfo `json:"layers"` // bottom-up; [0] is the bottom, last is the head
	Base   string      `json:"base,omitempty"`
	// Merged is the snapshot whose content the bottom layer plus the base
	// equal (the parent of the next upload when no sealed layer is
	// uploaded), "" for a disk that never had one.
	Merged string `json:"merged,omitempty"`
	Next   int    `json:"next"`
}

// Volume is a disk. It is safe for concurrent use.
type Volume struct {
	dir    string
	opener BaseOpener

	mu     sync.RWMutex // barrier: I/O holds it shared; chain changes hold it exclusively
	st     state
	layers []*layer
	base   Base
	closed bool
	failed error // set by fail: see ErrFailed
	// writeState replaces volume.json (atomicfile.Write; tests replace it).
	writeState func(path string, data []byte, perm os.FileMode) error
	stripes    [256]sync.Mutex // per-cluster copy-up serialisation
	flushMu    sync.Mutex
	// bottomMu serialises writes into the bottom layer (merges, hydration).
	bottomMu sync.Mutex
	bg       sync.WaitGroup // removal of layers dropped by Reset
	// hints receives the chunks (of hintChunk bytes) that reads fetched
	// from the base while Hydrate runs; nil otherwise. Sends never block.
	hints     chan int64
	hintChunk int64
}

// Create makes a new empty volume of size bytes in dir (which must not
// hold one).
func Create(dir string, size int64, opener BaseOpener) (*Volume, error) {
	if size <= 0 {
		return nil, fmt.Errorf("volume size %d: %w", size, ErrRange)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	if _, err := os.Stat(filepath.Join(dir, "volume.json")); err == nil {
		return nil, fmt.Errorf("volume %s already exists", dir)
	}
	// The directory's own entry must survive a power loss too (save
	// makes the entries inside it durable).
	if err := atomicfile.SyncDir(filepath.Dir(dir)); err != nil {
		return nil, err
	}
	v := &Volume{dir: dir, opener: opener, st: state{Size: size, Next: 0}}
	for i := 0; i < 2; i++ {
		l, err := v.newLayer()
		if err != nil {
			v.closeLayers()
			return nil, err
		}
		v.layers = append(v.layers, l)
		v.st.Layers = append(v.st.Layers, layerInfo{File: l.name})
	}
	if err := v.save(); err != nil {
		v.closeLayers()
		return nil, err
	}
	return v, nil
}

// Open opens the volume in dir.
func Open(dir string, opener BaseOpener) (*Volume, error) {
	raw, err := os.ReadFile(filepath.Join(dir, "volume.json"))
	if err != nil {
		return nil, err
	}
	v := &Volume{dir: dir, opener: opener}
	if err := json.Unmarshal(raw, &v.st); err != nil {
		return nil, fmt.Errorf("volume %s: %w", dir, err)
	}
	for _, li := range v.st.Layers {
		l, err := openLayer(dir, li.File, v.st.Size)
		if err != nil {
			v.closeLayers()
			return nil, fmt.Errorf("volume %s layer %s: %w", dir, li.File, err)
		}
		v.layers = append(v.layers, l)
	}
	if v.st.Base != "" {
		if v.base, err = opener(v.st.Base); err != nil {
			v.closeLayers()
			return nil, fmt.Errorf("volume %s base %s: %w", dir, v.st.Base, err)
		}
	}
	v.removeStrays()
	return v, nil
}

// removeStrays deletes layer files the chain does not name (left by a
// crash between creating a layer and recording it, or after a merge).
func (v *Volume) removeStrays() {
	named := map[string]bool{"volume.json": true}
	for _, li := range v.st.Layers {
		named[li.File+".data"], named[li.File+".map"] = true, true
	}
	entries, _ := os.ReadDir(v.dir)
	for _, e := range entries {
		if !named[e.Name()] && filepath.Ext(e.Name()) != ".manifest" {
			os.Remove(filepath.Join(v.dir, e.Name()))
		}
	}
}

func (v *Volume) newLayer() (*layer, error) {
	name := "layer-" + strconv.Itoa(v.st.Next)
	v.st.Next++
	return createLayer(v.dir, name, v.st.Size)
}

// save writes volume.json atomically and durably.
func (v *Volume) save() error {
	raw, err := json.Marshal(v.st)
	if err != nil {
		return err
	}
	write := v.writeState
	if write == nil {
		write = atomicfile.Write
	}
	return write(filepath.Join(v.dir, "volume.json"), raw, 0o600)
}

// commit saves a change of the chain (v.st, changed from prev). If the
// save fails, v.st is prev again. When volume.json may or may not have
// been replaced (atomicfile.ErrNotDurable), a crash may bring back
// either chain: the volume then fails (no I/O until it is reopened),
// and unknown tells the caller to keep the files of both. The caller
// holds v.mu for writing; prev must share no slice v.st's change wrote.
func (v *Volume) commit(prev state) (unknown bool, err error) {
	if err := v.save(); err != nil {
		v.st = prev
		if errors.Is(err, atomicfile.ErrNotDurable) {
			v.fail(err)
			return true, err
		}
		return false, err
	}
	return false, nil
}

// Size returns the size in bytes.
func (v *Volume) Size() int64 { return v.st.Size }

// Dir returns the volume's directory.
func (v *Volume) Dir() string { return v.dir }

// Close closes the volume. Unflushed writes may be lost.
func (v *Volume) Close() error {
	v.bg.Wait()
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.closed {
		return nil
	}
	v.closed = true
	err := v.closeLayers()
	if v.base != nil {
		err = errors.Join(err, v.base.Close())
	}
	return err
}

func (v *Volume) closeLayers() error {
	var err error
	for _, l := range v.layers {
		err = errors.Join(err, l.close())
	}
	return err
}

// usable returns why the volume cannot be used, nil when it can. The
// caller holds v.mu.
func (v *Volume) usable() error {
	if v.closed {
		return ErrClosed
	}
	return v.failed
}

// fail puts the volume out of service (see ErrFailed) after a change of
// volume.json that may or may not survive a crash: in memory the change
// was undone, on disk it may stand, so neither may be built on. The
// caller holds v.mu exclusively and removes no file either state names;
// Open removes the strays of the state that is durable.
func (v *Volume) fail(err error) {
	if v.failed == nil {
		v.failed = fmt.Errorf("%w: %w", ErrFailed, err)
	}
}

func (v *Volume) check(off, n int64) error {
	if err := v.usable(); err != nil {
		return err
	}
	if off < 0 || n < 0 || off+n > v.st.Size {
		return ErrRange
	}
	return nil
}
