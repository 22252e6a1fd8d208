package sqlstore

import (
	"github.com/snapstack/snapstack/internal/meta"
)

// PAI-DSW records (migrations/0002_dsw.sql).

var _ meta.DSWTx = (*tx)(nil)

func (x *tx) GetDSWInstance(accountID, id string) (*meta.DSWInstance, error) {
	i := new(meta.DSWInstance)
	return i, x.getJSON(i, `SELECT data FROM dsw_instances WHERE id = ? AND account_id = ?`, id, accountID)
}

func (x *tx) PutDSWInstance(i *meta.DSWInstance) error {
	err := x.upsert("dsw_instances",
		[]string{"id", "account_id", "workspace_id", "name", "status", "target_status", "settle_at", "priority", "created_at", "modified_at"},
		[]any{i.ID, i.AccountID, i.WorkspaceID, i.Name, i.Status, i.TargetStatus, nanos(i.SettleAt), i.Priority, nanos(i.CreatedAt), nanos(i.ModifiedAt)}, i)
	if err != nil {
		return err
	}
	return x.setTags(i.ID, i.Labels)
}

func (x *tx) DeleteDSWInstance(accountID, id string) error {
	return x.deleteRow("dsw_instances", accountID, id)
}

func (x *tx) ListDSWInstances(f meta.DSWInstanceFilter) ([]*meta.DSWInstance, int, error) {
	w := &where{}
	w.eq("account_id", f.AccountID)
	w.eq("id", f.InstanceID)
	w.eq("workspace_id", f.WorkspaceID)
	w.eq("name", f.Name)
	w.effectiveStatus(f.Status, f.Now)
	w.tags("dsw_instances.id", f.Labels)
	return sortedPage[meta.DSWInstance](x, "dsw_instances", w, dswOrder(f.SortBy, f.Ascending), f.Page)
}

func (x *tx) GetDSWSnapshot(accountID, id string) (*meta.DSWSnapshot, error) {
	s := new(meta.DSWSnapshot)
	return s, x.getJSON(s, `SELECT data FROM dsw_snapshots WHERE id = ? AND account_id = ?`, id, accountID)
}

func (x *tx) PutDSWSnapshot(s *meta.DSWSnapshot) error {
	return x.upsert("dsw_snapshots",
		[]string{"id", "account_id", "instance_id", "name", "status", "created_at", "modified_at"},
		[]any{s.ID, s.AccountID, s.InstanceID, s.Name, s.Status, nanos(s.CreatedAt), nanos(s.ModifiedAt)}, s)
}

func (x *tx) DeleteDSWSnapshot(accountID, id string) error {
	res, err := x.t.ExecContext(x.ctx, `DELETE FROM dsw_snapshots WHERE id = ? AND account_id = ?`, id, accountID)
	if err != nil {
		return err
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return meta.ErrNotFound
	}
	return nil
}

func (x *tx) ListDSWSnapshots(f meta.DSWSnapshotFilter) ([]*meta.DSWSnapshot, int, error) {
	w := &where{}
	w.eq("account_id", f.AccountID)
	w.eq("instance_id", f.InstanceID)
	w.in("status", f.Statuses)
	sort := f.SortBy
	if sort == meta.DSWSortPriority {
		sort = meta.DSWSortCreated
	}
	return sortedPage[meta.DSWSnapshot](x, "dsw_snapshots", w, dswOrder(sort, f.Ascending), f.Page)
}

// dswOrder is the ORDER BY of a DSW list; the ID breaks ties.
func dswOrder(by meta.DSWSort, asc bool) string {
	col := "created_at"
	switch by {
	case meta.DSWSortModified:
		col = "modified_at"
	case meta.DSWSortPriority:
		col = "priority"
	}
	dir := " DESC"
	if asc {
		dir = " ASC"
	}
	return col + dir + ", id" + dir
}

// sortedPage is page with a chosen order.
func sortedPage[T any](x *tx, table string, w *where, order string, p meta.Page) ([]*T, int, error) {
	var total int
	if err := x.t.QueryRowContext(x.ctx, "SELECT COUNT(*) FROM "+table+w.sql(), w.args...).Scan(&total); err != nil {
		return nil, 0, err
	}
	q := "SELECT data FROM " + table + w.sql() + " ORDER BY " + order
	args := append([]any{}, w.args...)
	if p.Limit > 0 {
		q += " LIMIT ? OFFSET ?"
		args = append(args, p.Limit, p.Offset)
	}
	items, err := listJSON[T](x, q, args...)
	return items, total, err
}
