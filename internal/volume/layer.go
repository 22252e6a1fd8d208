package volume

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"math/bits"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"syscall"
	"unsafe"
)

// ClusterSize is the copy-on-write unit.
const ClusterSize = 64 << 10

const recordSize = 16

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// layer is one level of the chain: a sparse data file and the set of
// clusters it holds.
type layer struct {
	name string // file name stem; for sealed layers, the snapshot ID
	data *os.File
	log  *os.File // map log (appended by Flush)
	bits []uint64 // clusters held, read and set atomically

	mu    sync.Mutex // guards dirty
	dirty []uint64   // clusters gained since the last Flush
	count atomic.Int64

	flushMu sync.Mutex // serialises flush; guards logSize and failed
	logSize int64      // bytes of whole records in the map log
	// failed is the first fsync error of the layer, returned by every
	// later flush: Linux reports a failed writeback once and marks the
	// pages clean, so a later fsync that succeeds proves nothing about
	// the data of the failed one. The layer stays failed until it is
	// opened again, when the map on disk names only flushed clusters.
	failed error
	// syncData makes the data file durable (its Sync; tests replace it).
	syncData func() error

	directOnce sync.Once
	direct     *os.File // the data file opened with O_DIRECT, nil if unavailable
}

const directAlign = 4096

// writeBulk writes p at off, bypassing the page cache (O_DIRECT) when p
// and off are aligned: bulk copies (hydration, merges) then do not pay
// for fresh page-cache pages. Durability is still the data file's fsync.
func (l *layer) writeBulk(p []byte, off int64) error {
	l.directOnce.Do(func() {
		if f, err := os.OpenFile(l.data.Name(), os.O_WRONLY|syscall.O_DIRECT, 0); err == nil {
			l.direct = f
		}
	})
	if l.direct != nil && off%directAlign == 0 && len(p)%directAlign == 0 && len(p) > 0 &&
		uintptr(unsafe.Pointer(&p[0]))%directAlign == 0 {
		_, err := l.direct.WriteAt(p, off)
		return err
	}
	_, err := l.data.WriteAt(p, off)
	return err
}

// alignedBuffer returns n bytes aligned for O_DIRECT, with at least
// directAlign bytes of spare capacity: decoders that fill the buffer
// (zstd's) take their fast path only with some slack past the end.
func alignedBuffer(n int) []byte {
	b := make([]byte, n+2*directAlign)
	off := 0
	if r := int(uintptr(unsafe.Pointer(&b[0])) % directAlign); r != 0 {
		off = directAlign - r
	}
	return b[off : off+n]
}

func nwords(clusters int64) int { return int((clusters + 63) / 64) }

// createLayer makes an empty layer of size bytes in dir.
func createLayer(dir, name string, size int64) (*layer, error) {
	data, err := os.OpenFile(filepath.Join(dir, name+".data"), os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return nil, err
	}
	if err := data.Truncate(size); err != nil {
		data.Close()
		return nil, err
	}
	log, err := os.OpenFile(filepath.Join(dir, name+".map"), os.O_RDWR|os.O_CREATE|os.O_TRUNC|os.O_APPEND, 0o600)
	if err != nil {
		data.Close()
		return nil, err
	}
	// No fsync here: the files are empty, their directory entries become
	// durable with the chain that names them (Volume.save fsyncs the
	// directory), and openLayer restores a size a crash lost.
	return newLayerOf(name, data, log, size), nil
}

func newLayerOf(name string, data, log *os.File, size int64) *layer {
	return &layer{name: name, data: data, log: log, bits: make([]uint64, nwords(clusters(size))), syncData: data.Sync}
}

// openLayer opens an existing layer and replays its map log. A torn or
// corrupt tail (a Flush that never returned) is cut off.
func openLayer(dir, name string, size int64) (*layer, error) {
	data, err := os.OpenFile(filepath.Join(dir, name+".data"), os.O_RDWR, 0)
	if err != nil {
		return nil, err
	}
	log, err := os.OpenFile(filepath.Join(dir, name+".map"), os.O_RDWR|os.O_APPEND, 0)
	if err != nil {
		data.Close()
		return nil, err
	}
	l := newLayerOf(name, data, log, size)
	if fi, err := data.Stat(); err == nil && fi.Size() < size {
		// A layer created just before a crash may have lost its length;
		// it holds no flushed cluster beyond it, so zero-extend.
		if err := data.Truncate(size); err != nil {
			l.close()
			return nil, err
		}
	}
	raw, err := io.ReadAll(log)
	if err != nil {
		l.close()
		return nil, err
	}
	good := 0
	for off := 0; off+recordSize <= len(raw); off += recordSize {
		rec := raw[off : off+recordSize]
		c := binary.LittleEndian.Uint64(rec)
		if crc32.Checksum(rec[:8], castagnoli) != binary.LittleEndian.Uint32(rec[8:]) || int64(c) >= clusters(size) {
			break
		}
		if !l.has(int64(c)) {
			l.set(int64(c))
		}
		good = off + recordSize
	}
	if good != len(raw) {
		if err := log.Truncate(int64(good)); err != nil {
			l.close()
			return nil, fmt.Errorf("cut torn map log of %s: %w", name, err)
		}
	}
	l.logSize = int64(good)
	return l, nil
}

func clusters(size int64) int64 { return (size + ClusterSize - 1) / ClusterSize }

func (l *layer) has(c int64) bool {
	return atomic.LoadUint64(&l.bits[c/64])&(1<<(uint(c)%64)) != 0
}

func (l *layer) set(c int64) {
	atomic.OrUint64(&l.bits[c/64], 1<<(uint(c)%64))
	l.count.Add(1)
}

// gain marks c as held after its data is written, and remembers it for
// the next Flush. The caller holds c's stripe lock.
func (l *layer) gain(c int64) {
	if l.has(c) {
		return
	}
	l.set(c)
	l.mu.Lock()
	l.dirty = append(l.dirty, uint64(c))
	l.mu.Unlock()
}

// flush makes the data and the map durable: data first, then the log.
// The clusters recorded are those gained before the data fsync started,
// so a write that lands during the fsync is never recorded without its
// data being durable; flushes of one layer run one at a time, so a flush
// returns only once the records of every earlier flush are durable too.
func (l *layer) flush() error {
	l.flushMu.Lock()
	defer l.flushMu.Unlock()
	if l.failed != nil {
		return l.failed
	}
	l.mu.Lock()
	dirty := l.dirty
	l.dirty = nil
	l.mu.Unlock()
	if err := l.syncData(); err != nil {
		l.requeue(dirty)
		l.failed = fmt.Errorf("%w: %w", ErrFailed, err)
		return err
	}
	if len(dirty) == 0 {
		return nil
	}
	buf := make([]byte, recordSize*len(dirty))
	for i, c := range dirty {
		rec := buf[i*recordSize : (i+1)*recordSize]
		binary.LittleEndian.PutUint64(rec, c)
		binary.LittleEndian.PutUint32(rec[8:], crc32.Checksum(rec[:8], castagnoli))
	}
	if _, err := l.log.Write(buf); err != nil {
		// A partial record would end the replay at open, hiding every
		// record appended after it: cut the log back to whole records.
		if terr := l.log.Truncate(l.logSize); terr != nil {
			l.failed = fmt.Errorf("%w: %w", ErrFailed, errors.Join(err, terr))
		}
		l.requeue(dirty)
		return err
	}
	if err := l.log.Sync(); err != nil {
		l.requeue(dirty)
		l.failed = fmt.Errorf("%w: %w", ErrFailed, err)
		return err
	}
	l.logSize += int64(len(buf))
	return nil
}

func (l *layer) requeue(dirty []uint64) {
	l.mu.Lock()
	l.dirty = append(dirty, l.dirty...)
	l.mu.Unlock()
}

// punch deallocates [off, off+n) of the data file (reads give zeroes).
func (l *layer) punch(off, n int64) error {
	const punchHole, keepSize = 0x02, 0x01
	err := syscall.Fallocate(int(l.data.Fd()), punchHole|keepSize, off, n)
	if errors.Is(err, syscall.EOPNOTSUPP) {
		_, err = l.data.WriteAt(make([]byte, n), off)
	}
	return err
}

// held calls fn for every cluster the layer holds, in order.
func (l *layer) held(fn func(c int64) error) error {
	for w, word := range l.bits {
		word = atomic.LoadUint64(&l.bits[w])
		for word != 0 {
			b := bits.TrailingZeros64(word)
			if err := fn(int64(w)*64 + int64(b)); err != nil {
				return err
			}
			word &^= 1 << uint(b)
		}
	}
	return nil
}

func (l *layer) close() error {
	err := errors.Join(l.data.Close(), l.log.Close())
	if l.direct != nil {
		err = errors.Join(err, l.direct.Close())
	}
	return err
}

func (l *layer) remove(dir string) error {
	l.close()
	return errors.Join(os.Remove(filepath.Join(dir, l.name+".data")), os.Remove(filepath.Join(dir, l.name+".map")))
}
