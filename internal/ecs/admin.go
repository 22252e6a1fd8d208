package ecs

import (
	"context"
	"errors"
	"strings"

	"github.com/snapstack/snapstack/internal/apierr"
	"github.com/snapstack/snapstack/internal/meta"
	"github.com/snapstack/snapstack/internal/param"
)

// AdminStates lists the states the admin interface sets and clears, by
// resource type: the states a client cannot provoke, so that every
// documented error can be reached by a test (docs/compatibility.md).
func AdminStates() map[string][]string {
	return map[string][]string{
		"account":  {"NotEnoughBalance", "SnapshotServiceUnavailable", "KMSUnauthorized"},
		"instance": {"SecurityLock"},
		"disk": {"InArrears", "Transferring", "Expired", "DeviceInvalid", "Encrypted", "SnapshotFail", "SnapshotHold", "SnapshotStall",
			"VolumeUnavailable", "VolumeMissing", "InstanceLost"},
	}
}

// SetState is the admin action: ResourceType (account|instance|disk),
// ResourceId (an account's own ID for account states; empty means the
// caller's account), State (one of AdminStates) and Value (true|false).
func (s *Service) SetState(ctx context.Context, c Caller, p param.Values) (any, error) {
	typ, err := p.Required("ResourceType")
	if err != nil {
		return nil, err
	}
	state, err := p.Required("State")
	if err != nil {
		return nil, err
	}
	states := AdminStates()
	if !contains(states[strings.ToLower(typ)], state) {
		return nil, apierr.InvalidParameter("State", "Known states: account "+strings.Join(states["account"], ",")+
			"; instance "+strings.Join(states["instance"], ",")+"; disk "+strings.Join(states["disk"], ",")+".")
	}
	on, ok, err := BoolParam(p, "Value")
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, apierr.MissingParameter("Value")
	}
	id := p.String("ResourceId")
	err = s.store.Update(ctx, func(tx meta.Tx) error {
		switch strings.ToLower(typ) {
		case "account":
			if id == "" {
				id = c.AccountID
			}
			if id != c.AccountID { // an account sets its own states only
				return apierr.InvalidParameter("ResourceId", "No such account.")
			}
			a, err := tx.GetAccount(id)
			if errors.Is(err, meta.ErrNotFound) {
				return apierr.InvalidParameter("ResourceId", "No such account.")
			} else if err != nil {
				return err
			}
			switch state {
			case "NotEnoughBalance":
				a.NotEnoughBalance = on
			case "SnapshotServiceUnavailable":
				a.SnapshotServiceUnavailable = on
			case "KMSUnauthorized":
				a.KMSUnauthorized = on
			}
			return tx.PutAccount(a)
		case "instance":
			inst, err := s.loadInstance(tx, meta.AnyProduct, c.AccountID, id, true)
			if err != nil {
				return err
			}
			inst.SecurityLocked = on
			return tx.PutInstance(inst)
		default:
			d, err := s.loadDisk(tx, meta.AnyProduct, c.AccountID, id, true)
			if err != nil {
				return err
			}
			flags := map[string]*bool{"InArrears": &d.InArrears, "Transferring": &d.Transferring, "Expired": &d.Expired,
				"DeviceInvalid": &d.DeviceInvalid, "Encrypted": &d.Encrypted, "SnapshotFail": &d.SnapshotFail,
				"SnapshotHold": &d.SnapshotHold, "SnapshotStall": &d.SnapshotStall, "VolumeUnavailable": &d.VolumeUnavailable,
				"VolumeMissing": &d.VolumeMissing, "InstanceLost": &d.InstanceLost}
			*flags[state] = on
			if err := tx.PutDisk(d); err != nil {
				return err
			}
			if state == "SnapshotHold" && !on {
				return s.releaseHeld(tx, d)
			}
			return nil
		}
	})
	if err != nil {
		return nil, wrap(err)
	}
	return &param.Response{}, nil
}

// releaseHeld completes the snapshots of d whose upload finished while
// the disk was held.
func (s *Service) releaseHeld(tx meta.Tx, d *meta.Disk) error {
	list, _, err := tx.ListSnapshots(meta.SnapshotFilter{AccountID: d.AccountID, DiskID: d.ID, Status: SnapProgressing})
	if err != nil {
		return err
	}
	for _, snap := range list {
		if snap.EngineDone {
			snap.Status, snap.ModifiedAt = SnapAccomplished, s.clock.Now()
			if err := tx.PutSnapshot(snap); err != nil {
				return err
			}
		}
	}
	return nil
}
