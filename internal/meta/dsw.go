package meta

import "time"

// DSWTx holds the PAI-DSW records: notebook instances and their instance
// snapshots (images committed from an instance's writable directory).
// It is embedded in Tx; the same rules apply (Get* return ErrNotFound,
// Put* insert or replace the whole record, records of another account are
// invisible).
type DSWTx interface {
	GetDSWInstance(accountID, id string) (*DSWInstance, error)
	PutDSWInstance(i *DSWInstance) error
	// DeleteDSWInstance removes the instance record only; its snapshots
	// are removed with DeleteDSWSnapshot.
	DeleteDSWInstance(accountID, id string) error
	// ListDSWInstances returns one page in the filter's order and the
	// number of instances that matched before paging.
	ListDSWInstances(f DSWInstanceFilter) ([]*DSWInstance, int, error)

	GetDSWSnapshot(accountID, id string) (*DSWSnapshot, error)
	PutDSWSnapshot(s *DSWSnapshot) error
	DeleteDSWSnapshot(accountID, id string) error
	// ListDSWSnapshots returns one page in the filter's order and the
	// number of snapshots that matched before paging.
	ListDSWSnapshots(f DSWSnapshotFilter) ([]*DSWSnapshot, int, error)
}

// DSWSort is the sort key of a DSW list.
type DSWSort string

// DSW sort keys. The second key is always the ID, in the same direction.
const (
	DSWSortCreated  DSWSort = "created"  // CreatedAt
	DSWSortModified DSWSort = "modified" // ModifiedAt
	DSWSortPriority DSWSort = "priority" // Priority (instances only)
)

// DSWInstance is a PAI-DSW notebook instance: a container environment
// whose writable filesystem layer (an overlayfs upper directory) is
// UpperDir. Status is the stored status; while a transition is under way
// TargetStatus and SettleAt say where it goes and when it gets there (the
// service settles it lazily).
type DSWInstance struct {
	ID            string
	AccountID     string
	WorkspaceID   string
	Name          string
	EcsSpec       string
	ImageID       string
	ImageURL      string // base image reference; "" starts from scratch
	ImageEmbedded bool   // ImageURL names the embedded registry
	Accessibility string // PRIVATE | PUBLIC
	Priority      int
	ResourceID    string
	Status        string
	TargetStatus  string
	SettleAt      time.Time
	UpperDir      string // absolute path of the writable layer
	ManagedDir    bool   // UpperDir lies in the data directory and goes with the instance
	Env           map[string]string
	Labels        []Tag
	// RequestedResource is the JSON object sent at creation, kept as is.
	RequestedResource string
	ReasonCode        string
	ReasonMessage     string
	CreatedAt         time.Time
	ModifiedAt        time.Time
}

// DSWInstanceFilter selects instances of one account.
type DSWInstanceFilter struct {
	AccountID   string
	InstanceID  string
	WorkspaceID string
	Name        string
	Status      string    // effective status, transitions settled as of Now
	Now         time.Time // resolves transitions for the Status filter
	Labels      []TagFilter
	SortBy      DSWSort // "" is DSWSortCreated
	Ascending   bool    // default newest (largest) first
	Page
}

// DSWSnapshot is an instance snapshot: the image made of the instance's
// base image and a layer of its writable directory, pushed to ImageURL.
type DSWSnapshot struct {
	ID            string
	AccountID     string
	InstanceID    string
	Name          string
	Description   string
	ImageURL      string // the pushed reference (with its tag)
	Embedded      bool   // ImageURL names the embedded registry
	Labels        []Tag
	ExcludePaths  []string
	Overwrite     bool
	Status        string
	ImageID       string // manifest digest once pushed
	ReasonCode    string
	ReasonMessage string
	CreatedAt     time.Time
	ModifiedAt    time.Time
}

// DSWSnapshotFilter selects snapshots. AccountID "" selects every account
// (the service's own view, e.g. to find unfinished snapshots at start).
type DSWSnapshotFilter struct {
	AccountID  string
	InstanceID string
	Statuses   []string // nil: any
	SortBy     DSWSort  // DSWSortCreated or DSWSortModified; "" is created
	Ascending  bool
	Page
}
