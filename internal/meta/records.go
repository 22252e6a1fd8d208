package meta

import (
	"strings"
	"time"
)

// AnyProduct in a filter's Product selects the records of every product.
const AnyProduct = "*"

// Instance is an ECS instance. Status is the stored status; while a
// transition is under way TargetStatus and SettleAt say where it goes and
// when it gets there (the service settles it lazily, so a restart loses
// nothing and tests move time with a fake clock).
type Instance struct {
	ID              string
	AccountID       string
	Product         string // owning product: "" for ECS, "ecd" for EDS
	RegionID        string
	ZoneID          string
	Name            string
	Description     string
	HostName        string
	ImageID         string
	InstanceType    string
	ResourceGroupID string
	Status          string
	TargetStatus    string
	SettleAt        time.Time
	StoppedMode     string
	EverStarted     bool
	SecurityLocked  bool
	CreatedAt       time.Time
	StartedAt       time.Time
	Tags            []Tag
	// Attrs are a product's own attributes (EDS: office site, bundle).
	Attrs map[string]string `json:",omitempty"`
}

// InstanceFilter selects instances of one account and region.
type InstanceFilter struct {
	AccountID string
	Product   string // always applied: "" selects ECS records only
	RegionID  string
	IDs       []string // nil: no filter; empty: nothing matches
	ZoneID    string
	Status    string    // effective status, transitions settled as of Now
	Now       time.Time // resolves transitions for the Status filters
	// Statuses keeps the instances whose effective status is one of them
	// (as Status, and besides it); nil: no filter.
	Statuses []string
	Name     string
	// NameGlob matches names in which each * stands for any run of
	// characters (the other characters match themselves, case
	// included); "" matches every name.
	NameGlob     string
	ImageID      string
	ImageIDs     []string // nil: no filter; empty: nothing matches
	InstanceType string
	// Attrs keeps the instances whose product attributes (Instance.Attrs)
	// hold each of these values; an absent attribute matches no value.
	Attrs map[string]string
	// AttrAny keeps the instances whose list attribute (an Attrs value
	// made by JoinList) holds at least one of the given values; an absent
	// attribute holds none. AttrNone drops those whose list attribute
	// holds any of them. A key with no values is no filter.
	AttrAny, AttrNone map[string][]string
	SecurityLocked    *bool     // nil: no filter
	CreatedAfter      time.Time // zero: no lower bound
	CreatedBefore     time.Time // zero: no upper bound
	ResourceGroupID   string
	Tags              []TagFilter
	Page
}

// Disk is a block device (ECS cloud disk).
type Disk struct {
	ID                 string
	AccountID          string
	Product            string // owning product: "" for ECS, "ecd" for EDS
	RegionID           string
	ZoneID             string
	Name               string
	Description        string
	Category           string
	PerformanceLevel   string
	Type               string // system | data
	SizeGiB            int
	ResourceGroupID    string
	Status             string
	TargetStatus       string
	SettleAt           time.Time
	InstanceID         string
	Device             string
	Portable           bool
	DeleteWithInstance bool
	DeleteAutoSnapshot bool
	EverAttached       bool // attached to an instance at least once
	Used               bool // attached to an instance while it ran
	SourceSnapshotID   string
	ImageID            string
	Encrypted          bool
	KMSKeyID           string
	CreatedAt          time.Time
	AttachedAt         time.Time
	DetachedAt         time.Time
	// States a client cannot provoke; set by the admin interface.
	InArrears     bool
	Transferring  bool
	Expired       bool
	DeviceInvalid bool
	SnapshotFail  bool // the next snapshot attempt fails (CreateSnapshot.Failed)
	SnapshotHold  bool // snapshot uploads of this disk stay in progress until cleared
	SnapshotStall bool // CreateSnapshot on this disk waits before the seal until cleared
	// Fault states of a disk's backing (admin): its Shared Block Storage
	// volume unavailable or gone, its instance record lost.
	VolumeUnavailable bool
	VolumeMissing     bool
	InstanceLost      bool
	MultiAttach       bool // Enabled at CreateDisk (shared by several instances)
	Tags              []Tag
}

// DiskFilter selects disks of one account and region.
type DiskFilter struct {
	AccountID       string
	Product         string // always applied: "" selects ECS records only
	RegionID        string
	IDs             []string
	ZoneID          string
	InstanceID      string
	Type            string
	Category        string
	Status          string    // effective status, transitions settled as of Now
	Now             time.Time // resolves transitions for the Status filter
	Name            string
	SnapshotID      string
	ResourceGroupID string
	Tags            []TagFilter
	// Flags, encryption and the financial lock: nil (or "") does not filter.
	Portable, DeleteWithInstance, DeleteAutoSnapshot, Encrypted, MultiAttach, InArrears *bool
	KMSKeyID                                                                            string
	CreatedAfter, CreatedBefore                                                         time.Time // inclusive; zero: unbounded
	Page
}

// Snapshot is a point-in-time copy of one disk.
type Snapshot struct {
	ID                         string
	AccountID                  string
	Product                    string // owning product: "" for ECS, "ecd" for EDS
	RegionID                   string
	Name                       string
	Description                string
	DiskID                     string
	DiskType                   string // system | data
	DiskCategory               string
	DiskSizeGiB                int
	InstanceID                 string // instance the disk was attached to when taken
	Status                     string // progressing | accomplished | failed
	ProgressDone               int64
	ProgressTotal              int64
	RetentionDays              int
	ExpiresAt                  time.Time // zero: kept until deleted
	InstantAccess              bool
	InstantAccessRetentionDays int
	InstantAccessExpiresAt     time.Time // zero: as long as the snapshot
	Category                   string    // standard | flash
	Type                       string    // user | auto
	Usage                      string    // none | disk | image | image_disk
	ResourceGroupID            string
	Encrypted                  bool
	KMSKeyID                   string
	FailReason                 string
	EngineDone                 bool // the engine finished; completion waits for a hold
	CreatedAt                  time.Time
	ModifiedAt                 time.Time
	Tags                       []Tag
}

// SnapshotFilter selects snapshots of one account (and region, when set).
type SnapshotFilter struct {
	AccountID       string
	Product         string // always applied: "" selects ECS records only
	RegionID        string
	IDs             []string
	DiskID          string
	InstanceID      string
	Name            string
	Status          string
	Type            string
	DiskType        string
	Category        string
	Usage           string
	ResourceGroupID string
	Encrypted       *bool
	KMSKeyID        string
	// DiskIDs, when not nil, selects snapshots of these disks only (an
	// empty list selects none).
	DiskIDs []string
	// InstanceIDs, when not nil, selects snapshots taken on these
	// instances only (an empty list selects none).
	InstanceIDs   []string
	CreatedAfter  time.Time
	CreatedBefore time.Time
	Tags          []TagFilter
	Page
}

// IdempotencyToken remembers a ClientToken: the request it came with and
// the resource it produced. ResultID is empty while the request is still
// being processed.
type IdempotencyToken struct {
	AccountID  string
	Action     string
	Token      string
	ParamsHash string
	ResultID   string
	CreatedAt  time.Time
}

// JoinList makes the value of a list attribute (Instance.Attrs) from
// values, which must not contain a comma; SplitList is its inverse.
func JoinList(values []string) string {
	if len(values) == 0 {
		return ""
	}
	return "," + strings.Join(values, ",") + ","
}

// SplitList returns the values of a list attribute made by JoinList.
func SplitList(attr string) []string {
	attr = strings.Trim(attr, ",")
	if attr == "" {
		return []string{}
	}
	return strings.Split(attr, ",")
}
