// Package meta is the metadata contract of snapstack: the records the
// control plane keeps (accounts, access keys, resource groups, instances,
// disks, snapshots, idempotency tokens, signature nonces) and the Store
// interface every metadata backend implements. It holds no SQL; see
// meta/sqlstore for the database/sql implementation and meta/metatest for
// the conformance suite every backend must pass.
package meta

import (
	"context"
	"errors"
	"time"
)

// Errors every Store returns, compared with errors.Is.
var (
	// ErrNotFound: the record does not exist (or belongs to another account).
	ErrNotFound = errors.New("meta: not found")
	// ErrExists: a record with this key already exists (Create* only).
	ErrExists = errors.New("meta: already exists")
)

// Store is a metadata backend.
//
// Update runs fn in a read-write transaction. Update transactions are
// serialised against each other (SQLite: BEGIN IMMEDIATE; PostgreSQL:
// SERIALIZABLE with retries), so a check made inside fn still holds when fn
// returns: two concurrent CreateSnapshot calls on one disk cannot both see
// "no snapshot in progress". If fn returns an error the transaction is
// rolled back and that error is returned unchanged. fn may be called more
// than once (on serialisation retries) and must not have side effects
// outside the Tx. When Update returns nil the changes are durable.
//
// View runs fn in a read-only transaction that sees one consistent state.
type Store interface {
	Update(ctx context.Context, fn func(Tx) error) error
	View(ctx context.Context, fn func(Tx) error) error
	Close() error
}

// Tx is the set of operations inside a transaction. Get* return ErrNotFound
// when the record is missing. Put* insert or replace the whole record.
// List* return records in a stable order (CreatedAt descending, then ID)
// and the total number that matched before paging.
type Tx interface {
	GetAccount(id string) (*Account, error)
	PutAccount(a *Account) error
	ListAccounts() ([]*Account, error)

	GetAccessKey(id string) (*AccessKey, error)
	PutAccessKey(k *AccessKey) error
	// ListAccessKeys returns an account's keys, by ID.
	ListAccessKeys(accountID string) ([]*AccessKey, error)
	// DeleteAccessKey revokes a key (ErrNotFound if there is none).
	DeleteAccessKey(id string) error

	GetResourceGroup(accountID, id string) (*ResourceGroup, error)
	PutResourceGroup(g *ResourceGroup) error
	DefaultResourceGroup(accountID string) (*ResourceGroup, error)

	GetInstance(accountID, id string) (*Instance, error)
	PutInstance(i *Instance) error
	DeleteInstance(accountID, id string) error
	ListInstances(f InstanceFilter) ([]*Instance, int, error)

	GetDisk(accountID, id string) (*Disk, error)
	// FindDisk returns a disk of any account (the data plane's view).
	FindDisk(id string) (*Disk, error)
	PutDisk(d *Disk) error
	DeleteDisk(accountID, id string) error
	ListDisks(f DiskFilter) ([]*Disk, int, error)

	GetSnapshot(accountID, id string) (*Snapshot, error)
	PutSnapshot(s *Snapshot) error
	DeleteSnapshot(accountID, id string) error
	ListSnapshots(f SnapshotFilter) ([]*Snapshot, int, error)
	// SnapshotDiskIDs returns the distinct source disks of an account's
	// snapshots of one product in one region (regionID "" for all),
	// sorted.
	SnapshotDiskIDs(accountID, product, regionID string) ([]string, error)
	// ExpiredSnapshots returns snapshots of every account whose retention
	// ends at or before now (ExpiresAt set and <= now), oldest first.
	ExpiredSnapshots(now time.Time, limit int) ([]*Snapshot, error)

	// GetToken returns the idempotency record of (account, action, token).
	GetToken(accountID, action, token string) (*IdempotencyToken, error)
	PutToken(t *IdempotencyToken) error

	// UseNonce records a signature nonce of an access key until expires. It
	// returns false when the nonce was already recorded and has not expired.
	UseNonce(accessKeyID, nonce string, now, expires time.Time) (bool, error)
	DSWTx
}

// Page selects a window of a list. Limit <= 0 means no limit.
type Page struct {
	Offset int
	Limit  int
}

// Tag is a key/value label on a resource.
type Tag struct {
	Key   string
	Value string
}

// TagFilter matches resources that carry Key; when HasValue, also Value.
type TagFilter struct {
	Key      string
	Value    string
	HasValue bool
}

// Account owns resources.
type Account struct {
	ID        string
	Name      string
	CreatedAt time.Time
	// States a client cannot provoke; set by the admin interface.
	NotEnoughBalance           bool
	SnapshotServiceUnavailable bool
	KMSUnauthorized            bool
}

// AccessKey authenticates API requests of an account.
type AccessKey struct {
	ID        string
	Secret    string
	AccountID string
	CreatedAt time.Time
}

// ResourceGroup is a label grouping resources of one account.
type ResourceGroup struct {
	ID        string
	AccountID string
	Name      string
	Default   bool
	CreatedAt time.Time
}
