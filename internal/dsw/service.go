// Package dsw is the PAI-DSW 2022-01-01 product service: notebook
// instances and instance snapshots (seed 003, CreateInstanceSnapshot).
//
// A DSW instance is a container environment. snapstack does not run the
// container: it keeps the instance's writable filesystem layer, an
// overlayfs upper directory that a container runtime mounts and tests
// write into, at <data>/dsw/instances/<InstanceId>/upper (with an empty
// "work" directory beside it for overlayfs), or at a host path given at
// creation. A snapshot commits that directory to an image (the instance's
// base image plus one layer) and pushes it to the registry ImageUrl names,
// in the background:
//
//	Saving (the layer is built) -> Pushing (base pulled, image pushed) -> Available
//	                                 any step fails -> Failed (ReasonCode, ReasonMessage)
//
// The service knows parameter names and rules, nothing about HTTP: the
// edge hands it a Call and renders the reply or the *apierr.Error.
package dsw

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/snapstack/snapstack/internal/clock"
	"github.com/snapstack/snapstack/internal/meta"
	"github.com/snapstack/snapstack/internal/oci"
)

// Instance statuses used here (a subset of DSW's).
const (
	StatusCreating = "Creating"
	StatusStarting = "Starting"
	StatusRunning  = "Running"
	StatusStopping = "Stopping"
	StatusStopped  = "Stopped"
	StatusFailed   = "Failed"
)

// Snapshot statuses.
const (
	SnapshotSaving    = "Saving"
	SnapshotPushing   = "Pushing"
	SnapshotAvailable = "Available"
	SnapshotFailed    = "Failed"
)

// UpperDirLabel is the instance label that places the upper directory at
// a host path (allowed under Config.HostPathRoots only).
const UpperDirLabel = "snapstack.io/upper-dir"

// Builder builds and pushes images (oci.Builder).
type Builder interface {
	Exists(ctx context.Context, r oci.Ref) (bool, error)
	Build(ctx context.Context, s oci.Spec) (oci.Result, error)
}

// Config holds the behaviour switches of the service.
type Config struct {
	// Dir holds managed upper directories and snapshot work files
	// (<data>/dsw).
	Dir string
	// HostPathRoots are the directories under which UpperDirLabel may
	// place an instance's upper directory; empty disables host paths.
	HostPathRoots []string
	// EmbeddedHosts are the registry hosts served by the embedded
	// registry besides the Host a request came to (the API listener).
	EmbeddedHosts []string
	// TransitionDelay is how long Creating/Starting/Stopping last.
	TransitionDelay time.Duration
	// CheckTimeout bounds the registry lookup of CreateInstanceSnapshot.
	CheckTimeout time.Duration
}

// Service implements the PAI-DSW actions.
type Service struct {
	store   meta.Store
	builder Builder
	clock   clock.Clock
	cfg     Config
	log     *slog.Logger

	ctx    context.Context // cancelled by Close; parent of every job
	cancel context.CancelFunc
	wg     sync.WaitGroup
	mu     sync.Mutex
	jobs   map[string]context.CancelFunc // running snapshot jobs by ID
}

// New returns a Service; call Resume once before serving.
func New(store meta.Store, b Builder, clk clock.Clock, cfg Config, log *slog.Logger) (*Service, error) {
	if cfg.Dir == "" {
		return nil, errors.New("dsw: no directory configured")
	}
	if cfg.CheckTimeout <= 0 {
		cfg.CheckTimeout = 10 * time.Second
	}
	for _, d := range []string{"instances", "work"} {
		if err := os.MkdirAll(filepath.Join(cfg.Dir, d), 0o755); err != nil {
			return nil, fmt.Errorf("dsw: %w", err)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &Service{store: store, builder: b, clock: clk, cfg: cfg, log: log, ctx: ctx, cancel: cancel,
		jobs: map[string]context.CancelFunc{}}, nil
}

// Resume marks the snapshots a previous run left Saving or Pushing as
// Failed (ReasonCode Interrupted) and clears their work files.
func (s *Service) Resume(ctx context.Context) error {
	if err := os.RemoveAll(filepath.Join(s.cfg.Dir, "work")); err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Join(s.cfg.Dir, "work"), 0o755); err != nil {
		return err
	}
	return s.store.Update(ctx, func(tx meta.Tx) error {
		snaps, _, err := tx.ListDSWSnapshots(meta.DSWSnapshotFilter{Statuses: []string{SnapshotSaving, SnapshotPushing}})
		if err != nil {
			return err
		}
		for _, sn := range snaps {
			sn.Status, sn.ReasonCode = SnapshotFailed, ReasonInterrupted
			sn.ReasonMessage = "The service stopped while the snapshot was under way; create it again."
			sn.ModifiedAt = s.clock.Now()
			if err := tx.PutDSWSnapshot(sn); err != nil {
				return err
			}
		}
		return nil
	})
}

// Close cancels the snapshots under way (they stay Saving/Pushing and are
// failed by the next Resume) and waits for their goroutines.
func (s *Service) Close() {
	s.cancel()
	s.wg.Wait()
}

// managedDir is the directory of an instance under Config.Dir.
func (s *Service) managedDir(id string) string { return filepath.Join(s.cfg.Dir, "instances", id) }

// embedded reports whether a registry host is the embedded registry.
func (s *Service) embedded(host, callHost string) bool {
	if callHost != "" && strings.EqualFold(host, callHost) {
		return true
	}
	for _, h := range s.cfg.EmbeddedHosts {
		if strings.EqualFold(host, h) {
			return true
		}
	}
	return false
}

const idAlphabet = "abcdefghijklmnopqrstuvwxyz0123456789"

// newID returns prefix-<16 random lower-case letters and digits>.
func newID(prefix string) string {
	b := make([]byte, 16)
	rand.Read(b)
	for i := range b {
		b[i] = idAlphabet[int(b[i])%len(idAlphabet)]
	}
	return prefix + "-" + string(b)
}

// timeStr is DSW's time format (2021-01-12T14:36:01Z).
func timeStr(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format("2006-01-02T15:04:05Z")
}
