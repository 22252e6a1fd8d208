// Package ecs is the ECS 2014-05-26 product service: the rules and error
// codes of seeds 004 and 002 (CreateSnapshot) and of the instance, disk and
// snapshot actions around them. It knows parameter names and documents,
// nothing about HTTP: the edge decodes a request into param.Values, calls
// the action, and renders the response struct or the *apierr.Error.
package ecs

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/snapstack/snapstack/internal/apierr"
	"github.com/snapstack/snapstack/internal/clock"
	"github.com/snapstack/snapstack/internal/meta"
	"github.com/snapstack/snapstack/internal/param"
)

// Region is a region the service serves, with its zones.
type Region struct {
	ID        string   `json:"id"`
	LocalName string   `json:"local_name"`
	Zones     []string `json:"zones"`
	// IDCode is the short code put into resource IDs (bp for cn-hangzhou).
	IDCode string `json:"id_code"`
}

// Config holds the behaviour switches of the service.
type Config struct {
	Regions       []Region
	DefaultRegion string
	// SnapshotQuotaPerDisk is the number of manual snapshots a disk may
	// have: 256 (seed 004, default) or 64 (seed 002, older behaviour).
	SnapshotQuotaPerDisk int
	// RequireInUseDisk applies seed 002: a snapshot needs the disk In_use.
	RequireInUseDisk bool
	// TransitionDelay is how long Pending/Starting/Stopping/Attaching/
	// Detaching/Creating/ReIniting last before the target state.
	TransitionDelay time.Duration
}

// DefaultConfig returns the configuration of a fresh install.
func DefaultConfig() Config {
	return Config{
		Regions: []Region{{
			ID: "cn-hangzhou", LocalName: "China (Hangzhou)", IDCode: "bp",
			Zones: []string{"cn-hangzhou-h", "cn-hangzhou-i", "cn-hangzhou-j"},
		}},
		DefaultRegion:        "cn-hangzhou",
		SnapshotQuotaPerDisk: 256,
		TransitionDelay:      2 * time.Second,
	}
}

// Caller is the authenticated principal of a request.
type Caller struct {
	AccountID   string
	AccessKeyID string
}

// Engine is the data plane as the snapshot core needs it. It knows bytes,
// not API names.
type Engine interface {
	// CreateDisk makes the data of a new disk of size bytes: empty, or
	// with the content of snapshotID when it is not "". It is called
	// before the disk is committed; a disk whose commit fails is deleted.
	CreateDisk(ctx context.Context, diskID string, size int64, snapshotID string) error
	// DeleteDisk releases the data of a disk (after its record is gone).
	DeleteDisk(ctx context.Context, diskID string) error
	// DiskOffline tells the data plane that a disk stops being served
	// (instance stopping, disk detaching): connections are flushed and
	// closed.
	DiskOffline(diskID string)
	// StartSnapshot fixes the point in time of job.SnapshotID: the
	// snapshot holds the disk's content as of this call. It returns once
	// that instant is fixed; making the snapshot durable continues in the
	// background and is reported through report, possibly from another
	// goroutine, with Done set exactly once at the end (Err nil on
	// success). It is called again after a restart for snapshots still
	// progressing; the engine then resumes their upload.
	StartSnapshot(ctx context.Context, job SnapshotJob, report func(Progress)) error
	// RestoreDisk makes the content of disk that of snapshot.
	RestoreDisk(ctx context.Context, diskID, snapshotID string) error
	// DeleteSnapshot releases the data of a snapshot (cancelling its
	// upload if it is still running). Unknown snapshots are not an error.
	DeleteSnapshot(ctx context.Context, snapshotID string) error
	// StoredSnapshots lists the snapshots whose data is stored (uploaded,
	// or uploaded and not released yet).
	StoredSnapshots(ctx context.Context) ([]string, error)
	// StoredDisks lists the disks that have a volume.
	StoredDisks(ctx context.Context) ([]string, error)
}

// SnapshotJob names the snapshot to take.
type SnapshotJob struct {
	SnapshotID string
	DiskID     string
	SizeBytes  int64
}

// Progress is what the engine reports about one snapshot.
type Progress struct {
	Done, Total int64 // work units done and to do
	Finished    bool
	Err         error // failure reason when Finished
}

// Service implements the ECS actions.
type Service struct {
	store  meta.Store
	engine Engine
	clock  clock.Clock
	cfg    Config
	log    *slog.Logger

	mu      sync.Mutex
	regions map[string]Region
}

// New returns a Service. Call Resume once at start.
func New(store meta.Store, engine Engine, clk clock.Clock, cfg Config, log *slog.Logger) (*Service, error) {
	if len(cfg.Regions) == 0 {
		return nil, errors.New("ecs: no region configured")
	}
	s := &Service{store: store, engine: engine, clock: clk, cfg: cfg, log: log, regions: map[string]Region{}}
	for _, r := range cfg.Regions {
		if r.ID == "" || len(r.Zones) == 0 {
			return nil, fmt.Errorf("ecs: region %q needs an ID and at least one zone", r.ID)
		}
		if r.IDCode == "" {
			r.IDCode = "zz"
		}
		s.regions[r.ID] = r
	}
	if _, ok := s.regions[cfg.DefaultRegion]; !ok {
		return nil, fmt.Errorf("ecs: default region %q is not configured", cfg.DefaultRegion)
	}
	if s.cfg.SnapshotQuotaPerDisk <= 0 {
		s.cfg.SnapshotQuotaPerDisk = 256
	}
	return s, nil
}

// region resolves the region of a request: RegionId when sent (must be
// configured), else fallback (the region of the resource the request
// names), else the default region.
func (s *Service) region(p param.Values, fallback string) (Region, error) {
	id := p.First("RegionId", "regionId")
	if id == "" {
		id = fallback
	}
	if id == "" {
		id = s.cfg.DefaultRegion
	}
	r, ok := s.regions[id]
	if !ok {
		return Region{}, apierr.InvalidRegionNotFound
	}
	return r, nil
}

// sameRegion checks that an explicit RegionId matches a resource's region.
func sameRegion(p param.Values, resourceRegion string) bool {
	id := p.First("RegionId", "regionId")
	return id == "" || id == resourceRegion
}

const idAlphabet = "abcdefghijklmnopqrstuvwxyz0123456789"

// newID returns prefix-<region code><18 random chars>, the shape of
// Alibaba Cloud resource IDs.
func newID(prefix, code string) string {
	b := make([]byte, 18)
	if _, err := rand.Read(b); err != nil {
		panic(err) // crypto/rand never fails on Linux
	}
	for i := range b {
		b[i] = idAlphabet[int(b[i])%len(idAlphabet)]
	}
	return prefix + "-" + code + string(b)
}

// NewRequestID returns an upper-case UUID, the shape of Alibaba request IDs.
func NewRequestID() string {
	b := make([]byte, 16)
	rand.Read(b)
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%X-%X-%X-%X-%X", b[0:4], b[4:6], b[6:8], b[8:10], b[10:])
}

// wrap turns a store error into an API error: *apierr.Error passes, the
// rest becomes InternalError with the cause kept for the log.
func wrap(err error) error {
	if err == nil {
		return nil
	}
	if apierr.As(err) != nil {
		return err
	}
	return apierr.Internal(err)
}

func timeStr(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format("2006-01-02T15:04:05Z")
}

func minuteStr(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format("2006-01-02T15:04Z")
}
