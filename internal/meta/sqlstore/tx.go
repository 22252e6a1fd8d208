package sqlstore

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/snapstack/snapstack/internal/meta"
)

type tx struct {
	ctx context.Context
	t   *sql.Tx
}

var _ meta.Tx = (*tx)(nil)

func nanos(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixNano()
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

func (x *tx) exec(q string, args ...any) error {
	_, err := x.t.ExecContext(x.ctx, q, args...)
	return err
}

// getJSON reads one `data` column into out.
func (x *tx) getJSON(out any, q string, args ...any) error {
	var data string
	err := x.t.QueryRowContext(x.ctx, q, args...).Scan(&data)
	if errors.Is(err, sql.ErrNoRows) {
		return meta.ErrNotFound
	}
	if err != nil {
		return err
	}
	return json.Unmarshal([]byte(data), out)
}

// listJSON reads `data` rows, decoding each with newItem.
func listJSON[T any](x *tx, q string, args ...any) ([]*T, error) {
	rows, err := x.t.QueryContext(x.ctx, q, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []*T
	for rows.Next() {
		var data string
		if err := rows.Scan(&data); err != nil {
			return nil, err
		}
		v := new(T)
		if err := json.Unmarshal([]byte(data), v); err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, rows.Err()
}

// upsert writes a row: cols[0] must be the primary key "id".
func (x *tx) upsert(table string, cols []string, vals []any, record any) error {
	data, err := json.Marshal(record)
	if err != nil {
		return err
	}
	cols = append(cols, "data")
	vals = append(vals, string(data))
	ph := strings.TrimSuffix(strings.Repeat("?,", len(cols)), ",")
	var set []string
	for _, c := range cols[1:] {
		set = append(set, c+" = excluded."+c)
	}
	q := fmt.Sprintf("INSERT INTO %s (%s) VALUES (%s) ON CONFLICT (id) DO UPDATE SET %s",
		table, strings.Join(cols, ", "), ph, strings.Join(set, ", "))
	return x.exec(q, vals...)
}

func (x *tx) setTags(resourceID string, tags []meta.Tag) error {
	if err := x.exec(`DELETE FROM tags WHERE resource_id = ?`, resourceID); err != nil {
		return err
	}
	for _, t := range tags {
		if err := x.exec(`INSERT INTO tags (resource_id, tag_key, tag_value) VALUES (?, ?, ?)`, resourceID, t.Key, t.Value); err != nil {
			return err
		}
	}
	return nil
}

func (x *tx) deleteRow(table, accountID, id string) error {
	res, err := x.t.ExecContext(x.ctx, "DELETE FROM "+table+" WHERE id = ? AND account_id = ?", id, accountID)
	if err != nil {
		return err
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return meta.ErrNotFound
	}
	return x.exec(`DELETE FROM tags WHERE resource_id = ?`, id)
}

// where builds a conjunction of conditions.
type where struct {
	conds []string
	args  []any
}

func (w *where) add(cond string, args ...any) {
	w.conds = append(w.conds, cond)
	w.args = append(w.args, args...)
}

func (w *where) eq(col, v string) {
	if v != "" {
		w.add(col+" = ?", v)
	}
}

// flag compares a 0/1 column with v, unless v is nil.
func (w *where) flag(col string, v *bool) {
	if v != nil {
		w.add(col+" = ?", b2i(*v))
	}
}

// glob keeps the rows whose col matches pattern, in which only * is
// special (any run of characters); case counts. "" keeps every row.
func (w *where) glob(col, pattern string) {
	if pattern == "" {
		return
	}
	// SQLite's GLOB also gives ? and [ a meaning: bracket them so that
	// they match themselves.
	esc := strings.NewReplacer("[", "[[]", "?", "[?]").Replace(pattern)
	w.add(col+" GLOB ?", esc)
}

// createdBetween keeps the rows created in [after, before]; a zero time
// leaves that side open.
func (w *where) createdBetween(after, before time.Time) {
	if !after.IsZero() {
		w.add("created_at >= ?", nanos(after))
	}
	if !before.IsZero() {
		w.add("created_at <= ?", nanos(before))
	}
}

// product selects one product's records; meta.AnyProduct selects all.
func (w *where) product(p string) {
	if p != meta.AnyProduct {
		w.add("product = ?", p)
	}
}

func (w *where) in(col string, ids []string) {
	if ids == nil {
		return
	}
	if len(ids) == 0 {
		w.add("1 = 0")
		return
	}
	ph := strings.TrimSuffix(strings.Repeat("?,", len(ids)), ",")
	args := make([]any, len(ids))
	for i, id := range ids {
		args[i] = id
	}
	w.add(col+" IN ("+ph+")", args...)
}

func (w *where) tags(idCol string, tags []meta.TagFilter) {
	for _, t := range tags {
		if t.HasValue {
			w.add("EXISTS (SELECT 1 FROM tags t WHERE t.resource_id = "+idCol+" AND t.tag_key = ? AND t.tag_value = ?)", t.Key, t.Value)
		} else {
			w.add("EXISTS (SELECT 1 FROM tags t WHERE t.resource_id = "+idCol+" AND t.tag_key = ?)", t.Key)
		}
	}
}

// effectiveStatus compares the status a row has as of now, transitions settled.
func (w *where) effectiveStatus(status string, now time.Time) {
	if status != "" {
		w.add("(CASE WHEN settle_at > 0 AND settle_at <= ? THEN target_status ELSE status END) = ?", nanos(now), status)
	}
}

// effectiveStatusIn keeps the rows whose status as of now is one of
// statuses; nil keeps every row.
func (w *where) effectiveStatusIn(statuses []string, now time.Time) {
	if statuses == nil {
		return
	}
	if len(statuses) == 0 {
		w.add("1 = 0")
		return
	}
	args := []any{nanos(now)}
	for _, s := range statuses {
		args = append(args, s)
	}
	ph := strings.TrimSuffix(strings.Repeat("?,", len(statuses)), ",")
	w.add("(CASE WHEN settle_at > 0 AND settle_at <= ? THEN target_status ELSE status END) IN ("+ph+")", args...)
}

// attrs keeps the rows whose JSON record holds each attribute (under
// Attrs) with the given value, in key order.
func (w *where) attrs(attrs map[string]string) {
	for _, k := range slices.Sorted(maps.Keys(attrs)) {
		path, _ := json.Marshal(k) // a quoted JSON path member
		w.add("json_extract(data, ?) = ?", "$.Attrs."+string(path), attrs[k])
	}
}

// attrLists keeps (none false) or drops (none true) the rows whose list
// attribute (meta.JoinList) holds one of the values, key by key.
func (w *where) attrLists(lists map[string][]string, none bool) {
	for _, k := range slices.Sorted(maps.Keys(lists)) {
		vals := lists[k]
		if len(vals) == 0 {
			continue
		}
		path, _ := json.Marshal(k)
		var ors []string
		var args []any
		for _, v := range vals {
			ors = append(ors, "instr(coalesce(json_extract(data, ?), ''), ?) > 0")
			args = append(args, "$.Attrs."+string(path), ","+v+",")
		}
		cond := "(" + strings.Join(ors, " OR ") + ")"
		if none {
			cond = "NOT " + cond
		}
		w.add(cond, args...)
	}
}

func (w *where) sql() string {
	if len(w.conds) == 0 {
		return ""
	}
	return " WHERE " + strings.Join(w.conds, " AND ")
}

// page runs a count and a paged select of `data` over table with w,
// newest first.
func page[T any](x *tx, table string, w *where, p meta.Page) ([]*T, int, error) {
	return sortedPage[T](x, table, w, "created_at DESC, id DESC", p)
}

func jsonString(v any) (string, error) {
	b, err := json.Marshal(v)
	return string(b), err
}
