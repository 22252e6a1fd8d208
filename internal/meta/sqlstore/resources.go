package sqlstore

import (
	"time"

	"github.com/snapstack/snapstack/internal/meta"
)

func (x *tx) GetAccount(id string) (*meta.Account, error) {
	a := new(meta.Account)
	return a, x.getJSON(a, `SELECT data FROM accounts WHERE id = ?`, id)
}

func (x *tx) PutAccount(a *meta.Account) error {
	return x.upsert("accounts", []string{"id"}, []any{a.ID}, a)
}

func (x *tx) ListAccounts() ([]*meta.Account, error) {
	return listJSON[meta.Account](x, `SELECT data FROM accounts ORDER BY id`)
}

func (x *tx) GetAccessKey(id string) (*meta.AccessKey, error) {
	k := new(meta.AccessKey)
	return k, x.getJSON(k, `SELECT data FROM access_keys WHERE id = ?`, id)
}

func (x *tx) PutAccessKey(k *meta.AccessKey) error {
	return x.upsert("access_keys", []string{"id", "account_id"}, []any{k.ID, k.AccountID}, k)
}

func (x *tx) ListAccessKeys(accountID string) ([]*meta.AccessKey, error) {
	return listJSON[meta.AccessKey](x, `SELECT data FROM access_keys WHERE account_id = ? ORDER BY id`, accountID)
}

func (x *tx) DeleteAccessKey(id string) error {
	res, err := x.t.ExecContext(x.ctx, `DELETE FROM access_keys WHERE id = ?`, id)
	if err != nil {
		return err
	}
	if n, err := res.RowsAffected(); err != nil {
		return err
	} else if n == 0 {
		return meta.ErrNotFound
	}
	return nil
}

func (x *tx) GetResourceGroup(accountID, id string) (*meta.ResourceGroup, error) {
	g := new(meta.ResourceGroup)
	return g, x.getJSON(g, `SELECT data FROM resource_groups WHERE id = ? AND account_id = ?`, id, accountID)
}

func (x *tx) PutResourceGroup(g *meta.ResourceGroup) error {
	return x.upsert("resource_groups", []string{"id", "account_id", "is_default"}, []any{g.ID, g.AccountID, b2i(g.Default)}, g)
}

func (x *tx) DefaultResourceGroup(accountID string) (*meta.ResourceGroup, error) {
	g := new(meta.ResourceGroup)
	return g, x.getJSON(g, `SELECT data FROM resource_groups WHERE account_id = ? AND is_default = 1`, accountID)
}

func (x *tx) GetInstance(accountID, id string) (*meta.Instance, error) {
	i := new(meta.Instance)
	return i, x.getJSON(i, `SELECT data FROM instances WHERE id = ? AND account_id = ?`, id, accountID)
}

func (x *tx) PutInstance(i *meta.Instance) error {
	err := x.upsert("instances",
		[]string{"id", "account_id", "product", "region_id", "zone_id", "name", "status", "target_status", "settle_at", "resource_group_id", "created_at",
			"image_id", "instance_type", "security_locked"},
		[]any{i.ID, i.AccountID, i.Product, i.RegionID, i.ZoneID, i.Name, i.Status, i.TargetStatus, nanos(i.SettleAt), i.ResourceGroupID, nanos(i.CreatedAt),
			i.ImageID, i.InstanceType, b2i(i.SecurityLocked)}, i)
	if err != nil {
		return err
	}
	return x.setTags(i.ID, i.Tags)
}

func (x *tx) DeleteInstance(accountID, id string) error {
	return x.deleteRow("instances", accountID, id)
}

func (x *tx) ListInstances(f meta.InstanceFilter) ([]*meta.Instance, int, error) {
	w := &where{}
	w.eq("account_id", f.AccountID)
	w.product(f.Product)
	w.eq("region_id", f.RegionID)
	w.in("id", f.IDs)
	w.eq("zone_id", f.ZoneID)
	w.eq("name", f.Name)
	w.glob("name", f.NameGlob)
	w.eq("image_id", f.ImageID)
	w.in("image_id", f.ImageIDs)
	w.eq("instance_type", f.InstanceType)
	w.attrs(f.Attrs)
	w.attrLists(f.AttrAny, false)
	w.attrLists(f.AttrNone, true)
	w.flag("security_locked", f.SecurityLocked)
	w.createdBetween(f.CreatedAfter, f.CreatedBefore)
	w.eq("resource_group_id", f.ResourceGroupID)
	w.effectiveStatus(f.Status, f.Now)
	w.effectiveStatusIn(f.Statuses, f.Now)
	w.tags("instances.id", f.Tags)
	return page[meta.Instance](x, "instances", w, f.Page)
}

func (x *tx) GetDisk(accountID, id string) (*meta.Disk, error) {
	d := new(meta.Disk)
	return d, x.getJSON(d, `SELECT data FROM disks WHERE id = ? AND account_id = ?`, id, accountID)
}

func (x *tx) FindDisk(id string) (*meta.Disk, error) {
	d := new(meta.Disk)
	return d, x.getJSON(d, `SELECT data FROM disks WHERE id = ?`, id)
}

func (x *tx) PutDisk(d *meta.Disk) error {
	err := x.upsert("disks",
		[]string{"id", "account_id", "product", "region_id", "zone_id", "instance_id", "name", "type", "category", "status", "target_status", "settle_at", "source_snapshot_id", "resource_group_id", "created_at",
			"portable", "delete_with_instance", "delete_auto_snapshot", "encrypted", "multi_attach", "kms_key_id", "in_arrears"},
		[]any{d.ID, d.AccountID, d.Product, d.RegionID, d.ZoneID, d.InstanceID, d.Name, d.Type, d.Category, d.Status, d.TargetStatus, nanos(d.SettleAt), d.SourceSnapshotID, d.ResourceGroupID, nanos(d.CreatedAt),
			b2i(d.Portable), b2i(d.DeleteWithInstance), b2i(d.DeleteAutoSnapshot), b2i(d.Encrypted), b2i(d.MultiAttach), d.KMSKeyID, b2i(d.InArrears)}, d)
	if err != nil {
		return err
	}
	return x.setTags(d.ID, d.Tags)
}

func (x *tx) DeleteDisk(accountID, id string) error {
	return x.deleteRow("disks", accountID, id)
}

func (x *tx) ListDisks(f meta.DiskFilter) ([]*meta.Disk, int, error) {
	w := &where{}
	w.eq("account_id", f.AccountID)
	w.product(f.Product)
	w.eq("region_id", f.RegionID)
	w.in("id", f.IDs)
	w.eq("zone_id", f.ZoneID)
	w.eq("instance_id", f.InstanceID)
	w.eq("type", f.Type)
	w.eq("category", f.Category)
	w.eq("name", f.Name)
	w.eq("source_snapshot_id", f.SnapshotID)
	w.eq("resource_group_id", f.ResourceGroupID)
	w.effectiveStatus(f.Status, f.Now)
	w.tags("disks.id", f.Tags)
	w.flag("portable", f.Portable)
	w.flag("delete_with_instance", f.DeleteWithInstance)
	w.flag("delete_auto_snapshot", f.DeleteAutoSnapshot)
	w.flag("encrypted", f.Encrypted)
	w.flag("multi_attach", f.MultiAttach)
	w.flag("in_arrears", f.InArrears)
	w.eq("kms_key_id", f.KMSKeyID)
	w.createdBetween(f.CreatedAfter, f.CreatedBefore)
	return page[meta.Disk](x, "disks", w, f.Page)
}

func (x *tx) GetSnapshot(accountID, id string) (*meta.Snapshot, error) {
	s := new(meta.Snapshot)
	return s, x.getJSON(s, `SELECT data FROM snapshots WHERE id = ? AND account_id = ?`, id, accountID)
}

func (x *tx) PutSnapshot(s *meta.Snapshot) error {
	err := x.upsert("snapshots",
		[]string{"id", "account_id", "product", "region_id", "disk_id", "instance_id", "name", "status", "type", "disk_type", "category", "usage", "resource_group_id", "encrypted", "kms_key_id", "created_at", "expires_at"},
		[]any{s.ID, s.AccountID, s.Product, s.RegionID, s.DiskID, s.InstanceID, s.Name, s.Status, s.Type, s.DiskType, s.Category, s.Usage, s.ResourceGroupID, b2i(s.Encrypted), s.KMSKeyID, nanos(s.CreatedAt), nanos(s.ExpiresAt)}, s)
	if err != nil {
		return err
	}
	return x.setTags(s.ID, s.Tags)
}

func (x *tx) DeleteSnapshot(accountID, id string) error {
	return x.deleteRow("snapshots", accountID, id)
}

func (x *tx) ListSnapshots(f meta.SnapshotFilter) ([]*meta.Snapshot, int, error) {
	w := &where{}
	w.eq("account_id", f.AccountID)
	w.product(f.Product)
	w.eq("region_id", f.RegionID)
	w.in("id", f.IDs)
	w.eq("disk_id", f.DiskID)
	w.eq("instance_id", f.InstanceID)
	w.eq("name", f.Name)
	w.eq("status", f.Status)
	w.eq("type", f.Type)
	w.eq("disk_type", f.DiskType)
	w.eq("category", f.Category)
	w.eq("usage", f.Usage)
	w.eq("resource_group_id", f.ResourceGroupID)
	w.flag("encrypted", f.Encrypted)
	w.eq("kms_key_id", f.KMSKeyID)
	w.in("disk_id", f.DiskIDs)
	w.in("instance_id", f.InstanceIDs)
	w.createdBetween(f.CreatedAfter, f.CreatedBefore)
	w.tags("snapshots.id", f.Tags)
	return page[meta.Snapshot](x, "snapshots", w, f.Page)
}

func (x *tx) SnapshotDiskIDs(accountID, product, regionID string) ([]string, error) {
	w := &where{}
	w.eq("account_id", accountID)
	w.product(product)
	w.eq("region_id", regionID)
	rows, err := x.t.QueryContext(x.ctx, "SELECT DISTINCT disk_id FROM snapshots"+w.sql()+" ORDER BY disk_id", w.args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var ids []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return nil, err
		}
		ids = append(ids, id)
	}
	return ids, rows.Err()
}

func (x *tx) ExpiredSnapshots(now time.Time, limit int) ([]*meta.Snapshot, error) {
	return listJSON[meta.Snapshot](x,
		`SELECT data FROM snapshots WHERE expires_at > 0 AND expires_at <= ? ORDER BY expires_at, id LIMIT ?`, nanos(now), limit)
}

func (x *tx) GetToken(accountID, action, token string) (*meta.IdempotencyToken, error) {
	t := new(meta.IdempotencyToken)
	return t, x.getJSON(t, `SELECT data FROM idempotency_tokens WHERE account_id = ? AND action = ? AND token = ?`, accountID, action, token)
}

func (x *tx) PutToken(t *meta.IdempotencyToken) error {
	data, err := jsonString(t)
	if err != nil {
		return err
	}
	return x.exec(`INSERT INTO idempotency_tokens (account_id, action, token, created_at, data) VALUES (?, ?, ?, ?, ?)
		ON CONFLICT (account_id, action, token) DO UPDATE SET data = excluded.data`,
		t.AccountID, t.Action, t.Token, nanos(t.CreatedAt), data)
}

func (x *tx) UseNonce(accessKeyID, nonce string, now, expires time.Time) (bool, error) {
	if err := x.exec(`DELETE FROM signature_nonces WHERE expires_at <= ?`, nanos(now)); err != nil {
		return false, err
	}
	res, err := x.t.ExecContext(x.ctx, `INSERT INTO signature_nonces (access_key_id, nonce, expires_at) VALUES (?, ?, ?)
		ON CONFLICT (access_key_id, nonce) DO NOTHING`, accessKeyID, nonce, nanos(expires))
	if err != nil {
		return false, err
	}
	n, err := res.RowsAffected()
	return n == 1, err
}
