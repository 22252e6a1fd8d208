// Package app wires snapstack together: metadata store, engine, product
// services and the HTTP edge. cmd/snapstack and the end-to-end tests use
// it; nothing else imports it.
package app

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/snapstack/snapstack/internal/api"
	"github.com/snapstack/snapstack/internal/atomicfile"
	"github.com/snapstack/snapstack/internal/blob/local"
	"github.com/snapstack/snapstack/internal/chunk"
	"github.com/snapstack/snapstack/internal/clock"
	"github.com/snapstack/snapstack/internal/dsw"
	"github.com/snapstack/snapstack/internal/ecd"
	"github.com/snapstack/snapstack/internal/ecs"
	"github.com/snapstack/snapstack/internal/engine"
	"github.com/snapstack/snapstack/internal/iam"
	"github.com/snapstack/snapstack/internal/meta/sqlstore"
	"github.com/snapstack/snapstack/internal/nbd"
	"github.com/snapstack/snapstack/internal/registry"

	"golang.org/x/sys/unix"
)

// Config is everything Start needs.
type Config struct {
	Listen            string     // API address, e.g. 127.0.0.1:9090 (":0" style picks a free port)
	NBDListen         string     // NBD address, e.g. 127.0.0.1:10809
	NBDLimits         nbd.Limits // connections and buffer memory of NBD clients (zero: defaults)
	DataDir           string
	Admin             bool // serve the admin actions
	ECS               ecs.Config
	API               api.Options
	RetentionInterval time.Duration
	// GCInterval is how often unreferenced chunks, and the embedded
	// registry's unreferenced blobs, are collected.
	GCInterval time.Duration
	// Compression of new chunks: "s2" (the default when empty), "zstd"
	// or "none" (chunk.ParseCompression). Stored chunks of every
	// compression are read whatever it is.
	Compression string
	// AccessKeyID/AccessKeySecret of the root account; when empty the key
	// stored in the data directory is used, or a new one is made.
	AccessKeyID     string
	AccessKeySecret string
	Clock           clock.Clock
	Log             *slog.Logger
	// Announce receives the one-time message with a newly created key.
	Announce io.Writer
	DSW      DSWConfig // PAI-DSW and the embedded registry (dsw.go)
}

// RootKey is the root account's AccessKey.
type RootKey struct {
	AccessKeyID     string `json:"access_key_id"`
	AccessKeySecret string `json:"access_key_secret"`
}

// App is a running snapstack.
type App struct {
	Addr    string // the API listen address
	NBDAddr string // the NBD listen address
	Key     RootKey
	Service *ecs.Service

	Engine *engine.Engine
	DSW    *dsw.Service

	srv      *http.Server
	nbd      *nbd.Server
	registry *registry.Registry // the embedded registry
	store    *sqlstore.Store
	lock     *os.File // the data directory's lock, held while serving
	cancel   context.CancelFunc
	wg       sync.WaitGroup
	errc     chan error
}

// KeyFile is the name of the root key file in the data directory.
const KeyFile = "root-key.json"

// Start opens the data directory and serves the API until Close.
func Start(ctx context.Context, cfg Config) (*App, error) {
	if cfg.Clock == nil {
		cfg.Clock = clock.Real{}
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if cfg.RetentionInterval <= 0 {
		cfg.RetentionInterval = time.Minute
	}
	if cfg.GCInterval <= 0 {
		cfg.GCInterval = 10 * time.Minute
	}
	compression, err := chunk.ParseCompression(cfg.Compression)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return nil, fmt.Errorf("data directory: %w", err)
	}
	lock, err := lockDataDir(cfg.DataDir)
	if err != nil {
		return nil, err
	}
	started := false
	defer func() {
		if !started {
			lock.Close()
		}
	}()
	store, err := sqlstore.OpenSQLite(ctx, filepath.Join(cfg.DataDir, "meta.db"))
	if err != nil {
		return nil, err
	}
	blobs, err := local.New(filepath.Join(cfg.DataDir, "store"))
	if err != nil {
		store.Close()
		return nil, err
	}
	eng, err := engine.New(filepath.Join(cfg.DataDir, "volumes"), blobs, compression, cfg.Log)
	if err != nil {
		store.Close()
		return nil, err
	}
	a := &App{store: store, Engine: eng, errc: make(chan error, 1), lock: lock}
	var listeners []net.Listener
	fail := func(err error) (*App, error) {
		for _, ln := range listeners {
			ln.Close()
		}
		eng.Close()
		store.Close()
		return nil, err
	}
	svc, err := ecs.New(store, eng, cfg.Clock, cfg.ECS, cfg.Log)
	if err != nil {
		return fail(err)
	}
	a.Service = svc
	key, created, err := rootKey(cfg)
	if err != nil {
		return fail(err)
	}
	if _, err := svc.EnsureRootAccount(ctx, key.AccessKeyID, key.AccessKeySecret); err != nil {
		return fail(fmt.Errorf("root account: %w", err))
	}
	a.Key = key
	if created && cfg.Announce != nil {
		fmt.Fprintf(cfg.Announce, "snapstack: created the root AccessKey (shown once; also stored in %s):\n  AccessKeyId:     %s\n  AccessKeySecret: %s\n",
			filepath.Join(cfg.DataDir, KeyFile), key.AccessKeyID, key.AccessKeySecret)
	}
	if err := svc.Resume(ctx); err != nil {
		return fail(fmt.Errorf("resume snapshots: %w", err))
	}
	// A crash can leave the data of a deleted snapshot stored.
	if _, err := svc.ReleaseOrphans(ctx); err != nil {
		return fail(fmt.Errorf("release deleted snapshots' data: %w", err))
	}
	// ... and the volume of a disk being created or deleted.
	if _, err := svc.ReleaseOrphanDisks(ctx); err != nil {
		return fail(fmt.Errorf("remove volumes without a disk: %w", err))
	}
	keys := iam.New(store)
	h := api.New(keys, func(err error) bool { return errors.Is(err, iam.ErrUnknownKey) }, cfg.Clock, cfg.Log, cfg.API)
	h.Register(api.ECSVersion, api.ECSActions(svc))
	eds := map[string]api.Handler{}
	for name, fn := range ecd.New(svc, cfg.Log).Actions() {
		eds[name] = fn
	}
	h.Register(ecd.Version, eds)
	if cfg.Admin {
		h.Register(api.AdminVersion, api.AdminActions(svc))
	}
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return fail(err)
	}
	listeners = append(listeners, ln)
	if cfg.NBDListen == "" {
		cfg.NBDListen = "127.0.0.1:0"
	}
	nln, err := net.Listen("tcp", cfg.NBDListen)
	if err != nil {
		return fail(fmt.Errorf("nbd: %w", err))
	}
	a.Addr, a.NBDAddr = ln.Addr().String(), nln.Addr().String()
	if err := a.startDSW(ctx, cfg, store, h, keys); err != nil {
		return fail(err)
	}
	if cfg.Admin {
		h.Register(api.AdminVersion, dataAdmin(eng, store, a.registry, cfg.Log))
	}
	a.nbd = nbd.NewServer(exports{svc: svc, eng: eng}, cfg.Log, cfg.NBDLimits)
	eng.OnOffline(a.nbd.Disconnect)
	// Idle keep-alive connections are closed after two minutes; API
	// requests bound the time their body takes to arrive (api.Options
	// BodyTimeout; the registry's uploads may take longer).
	a.srv = &http.Server{Handler: h, ReadHeaderTimeout: 30 * time.Second, IdleTimeout: 2 * time.Minute,
		MaxHeaderBytes: 64 << 10} // Alibaba requests carry a few KiB of headers at most
	bg, cancel := context.WithCancel(context.Background())
	a.cancel = cancel
	a.wg.Add(4)
	go func() {
		defer a.wg.Done()
		if err := a.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			a.errc <- err
		}
	}()
	go func() {
		defer a.wg.Done()
		if err := a.nbd.Serve(nln); err != nil {
			a.errc <- fmt.Errorf("nbd: %w", err)
		}
	}()
	go func() {
		defer a.wg.Done()
		svc.RunRetention(bg, cfg.RetentionInterval)
	}()
	go func() {
		defer a.wg.Done()
		collectLoop(bg, eng, a.registry, cfg.GCInterval, cfg.Log)
	}()
	cfg.Log.Info("snapstack serving", "listen", a.Addr, "data", cfg.DataDir, "admin", cfg.Admin)
	started = true
	return a, nil
}

// ErrDataDirInUse: another process serves the data directory.
var ErrDataDirInUse = errors.New("the data directory is in use by another snapstack process")

// lockDataDir takes an exclusive lock on dir's lock file, held until the
// file is closed (or the process ends, however it ends). Two services on
// one directory would remove each other's temporary files, resume the
// same uploads and write the same volumes.
func lockDataDir(dir string) (*os.File, error) {
	f, err := os.OpenFile(filepath.Join(dir, "lock"), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("data directory: %w", err)
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, unix.EWOULDBLOCK) {
			return nil, fmt.Errorf("%s: %w", dir, ErrDataDirInUse)
		}
		return nil, fmt.Errorf("data directory lock: %w", err)
	}
	return f, nil
}

// Err reports a fatal serving error.
func (a *App) Err() <-chan error { return a.errc }

// Close stops serving (letting requests in flight finish), waits for
// background work and closes the store.
func (a *App) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err := a.srv.Shutdown(ctx)
	err = errors.Join(err, a.nbd.Close())
	a.cancel()
	a.wg.Wait()
	err = errors.Join(err, a.closeDSW(), a.Engine.Close(), a.store.Close())
	return errors.Join(err, a.lock.Close())
}

// rootKey picks the root key: configuration (environment), else the key
// file, else a new random key written to the key file (created = true).
func rootKey(cfg Config) (key RootKey, created bool, err error) {
	if cfg.AccessKeyID != "" || cfg.AccessKeySecret != "" {
		if cfg.AccessKeyID == "" || cfg.AccessKeySecret == "" {
			return key, false, errors.New("both SNAPSTACK_ACCESS_KEY_ID and SNAPSTACK_ACCESS_KEY_SECRET must be set")
		}
		return RootKey{cfg.AccessKeyID, cfg.AccessKeySecret}, false, nil
	}
	path := filepath.Join(cfg.DataDir, KeyFile)
	if raw, err := os.ReadFile(path); err == nil {
		if err := json.Unmarshal(raw, &key); err != nil || key.AccessKeyID == "" {
			return key, false, fmt.Errorf("%s is damaged", path)
		}
		return key, false, nil
	} else if !errors.Is(err, os.ErrNotExist) {
		return key, false, err
	}
	key = RootKey{AccessKeyID: "LTAI" + randHex(10), AccessKeySecret: randHex(15)}
	raw, _ := json.MarshalIndent(key, "", "  ")
	if err := atomicfile.Write(path, raw, 0o600); err != nil {
		return key, false, err
	}
	return key, true, nil
}

func randHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// ReadKeyFile reads the root key stored in a data directory.
func ReadKeyFile(dataDir string) (RootKey, error) {
	var k RootKey
	raw, err := os.ReadFile(filepath.Join(dataDir, KeyFile))
	if err != nil {
		return k, err
	}
	return k, json.Unmarshal(raw, &k)
}
