package dsw

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/snapstack/snapstack/internal/meta"
)

// createInstanceBody is the JSON body of CreateInstance (fields not listed
// are accepted and ignored).
type createInstanceBody struct {
	WorkspaceId          string
	InstanceName         string
	EcsSpec              string
	ImageId              string
	ImageUrl             string
	Accessibility        string
	ResourceId           string
	Priority             int64
	RequestedResource    json.RawMessage
	EnvironmentVariables map[string]string
	Labels               []label
}

// settle applies a finished transition as of now.
func settle(in *meta.DSWInstance, now time.Time) {
	if !in.SettleAt.IsZero() && !now.Before(in.SettleAt) {
		in.Status, in.TargetStatus, in.SettleAt = in.TargetStatus, "", time.Time{}
	}
}

// transition moves an instance to status to, through via for
// TransitionDelay (directly when the delay is 0).
func (s *Service) transition(in *meta.DSWInstance, via, to string, now time.Time) {
	in.ModifiedAt = now
	if s.cfg.TransitionDelay <= 0 {
		in.Status, in.TargetStatus, in.SettleAt = to, "", time.Time{}
		return
	}
	in.Status, in.TargetStatus, in.SettleAt = via, to, now.Add(s.cfg.TransitionDelay)
}

// CreateInstance implements POST /api/v2/instances.
func (s *Service) CreateInstance(ctx context.Context, c *Call) (any, error) {
	var b createInstanceBody
	if err := decode(c.Body, &b); err != nil {
		return nil, err
	}
	in := &meta.DSWInstance{ID: newID("dsw"), AccountID: c.AccountID, WorkspaceID: b.WorkspaceId, Name: b.InstanceName,
		EcsSpec: b.EcsSpec, ImageID: b.ImageId, ImageURL: b.ImageUrl, Accessibility: strings.ToUpper(b.Accessibility),
		Priority: int(b.Priority), ResourceID: b.ResourceId, Env: b.EnvironmentVariables}
	if err := checkInstanceName(b.InstanceName); err != nil {
		return nil, err
	}
	for _, f := range []struct{ name, v string }{{"WorkspaceId", b.WorkspaceId}, {"EcsSpec", b.EcsSpec}, {"ImageId", b.ImageId}, {"ResourceId", b.ResourceId}} {
		if len(f.v) > 128 || !printable(f.v) {
			return nil, invalid("%s must be at most 128 printable characters.", f.name)
		}
	}
	switch in.Accessibility {
	case "":
		in.Accessibility = "PRIVATE"
	case "PRIVATE", "PUBLIC":
	default:
		return nil, invalid("Accessibility %q is not valid: PRIVATE or PUBLIC.", b.Accessibility)
	}
	if b.Priority != 0 && (b.Priority < 1 || b.Priority > 9) {
		return nil, invalid("Priority %d is not valid: an integer from 1 to 9.", b.Priority)
	}
	if len(b.RequestedResource) > 0 && string(b.RequestedResource) != "null" {
		if b.RequestedResource[0] != '{' || len(b.RequestedResource) > 4096 {
			return nil, invalid("RequestedResource must be an object.")
		}
		in.RequestedResource = string(b.RequestedResource)
	}
	if err := checkEnv(b.EnvironmentVariables); err != nil {
		return nil, err
	}
	var err error
	if in.Labels, err = checkLabels("Labels", b.Labels); err != nil {
		return nil, err
	}
	if b.ImageUrl != "" {
		n, err := parseImage("ImageUrl", b.ImageUrl, "latest", true)
		if err != nil {
			return nil, err
		}
		in.ImageEmbedded = s.embedded(n.Registry, c.Host)
	}
	if err := s.placeUpperDir(in); err != nil {
		return nil, err
	}
	now := s.clock.Now()
	in.CreatedAt = now
	s.transition(in, StatusCreating, StatusRunning, now)
	if err := s.store.Update(ctx, func(tx meta.Tx) error { return tx.PutDSWInstance(in) }); err != nil {
		if in.ManagedDir {
			os.RemoveAll(s.managedDir(in.ID))
		}
		return nil, wrap(err)
	}
	return &IDReply{InstanceId: in.ID}, nil
}

// placeUpperDir sets the instance's upper directory: the host path of
// UpperDirLabel (an existing directory under a HostPathRoots entry), or a
// new managed directory.
func (s *Service) placeUpperDir(in *meta.DSWInstance) error {
	for _, l := range in.Labels {
		if l.Key != UpperDirLabel {
			continue
		}
		p := l.Value
		if !filepath.IsAbs(p) || filepath.Clean(p) != p {
			return invalid("The label %s must be a clean absolute path.", UpperDirLabel)
		}
		resolved, ok := s.allowedHostPath(p)
		if !ok {
			return invalid("The label %s must name an existing directory inside the directories allowed for instance filesystems.", UpperDirLabel)
		}
		if fi, err := os.Stat(p); err != nil || !fi.IsDir() {
			return invalid("The label %s names %q, which is not an existing directory.", UpperDirLabel, p)
		}
		in.UpperDir = resolved
		return nil
	}
	dir := s.managedDir(in.ID)
	for _, d := range []string{"upper", "work"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			return wrap(fmt.Errorf("instance directory: %w", err))
		}
	}
	in.UpperDir, in.ManagedDir = filepath.Join(dir, "upper"), true
	return nil
}

// allowedHostPath resolves the symlinks of p and reports whether it lies
// strictly inside one of HostPathRoots (resolved too).
func (s *Service) allowedHostPath(p string) (string, bool) {
	resolved, err := filepath.EvalSymlinks(p)
	if err != nil {
		return "", false
	}
	for _, root := range s.cfg.HostPathRoots {
		r, err := filepath.EvalSymlinks(root)
		if err != nil {
			continue
		}
		if rel, err := filepath.Rel(r, resolved); err == nil && rel != "." && rel != ".." && !strings.HasPrefix(rel, "../") {
			return resolved, true
		}
	}
	return "", false
}

// loadInstance reads and settles an instance of the caller.
func (s *Service) loadInstance(tx meta.Tx, c *Call) (*meta.DSWInstance, error) {
	id := c.Path["InstanceId"]
	in, err := tx.GetDSWInstance(c.AccountID, id)
	if err != nil {
		return nil, notFound(err, instanceNotFound(id))
	}
	settle(in, s.clock.Now())
	return in, nil
}

// GetInstance implements GET /api/v2/instances/{InstanceId}.
func (s *Service) GetInstance(ctx context.Context, c *Call) (any, error) {
	var reply *InstanceReply
	err := s.store.View(ctx, func(tx meta.Tx) error {
		in, err := s.loadInstance(tx, c)
		if err != nil {
			return err
		}
		latest, _, err := tx.ListDSWSnapshots(meta.DSWSnapshotFilter{AccountID: c.AccountID, InstanceID: in.ID, Page: meta.Page{Limit: 1}})
		if err != nil {
			return err
		}
		var l *meta.DSWSnapshot
		if len(latest) > 0 {
			l = latest[0]
		}
		reply = &InstanceReply{Instance: instanceView(in, l)}
		return nil
	})
	return reply, wrap(err)
}

// ListInstances implements GET /api/v2/instances.
func (s *Service) ListInstances(ctx context.Context, c *Call) (any, error) {
	q := c.Query
	page, err := paging(q)
	if err != nil {
		return nil, err
	}
	asc, err := order(q)
	if err != nil {
		return nil, err
	}
	f := meta.DSWInstanceFilter{AccountID: c.AccountID, InstanceID: q.Get("InstanceId"), WorkspaceID: q.Get("WorkspaceId"),
		Name: q.Get("InstanceName"), Status: q.Get("Status"), Now: s.clock.Now(), Ascending: asc, Page: page}
	switch q.Get("SortBy") {
	case "", "GmtModifiedTime":
		f.SortBy = meta.DSWSortModified
	case "GmtCreateTime":
		f.SortBy = meta.DSWSortCreated
	case "Priority":
		f.SortBy = meta.DSWSortPriority
	default:
		return nil, invalid("SortBy %q is not valid: Priority, GmtCreateTime or GmtModifiedTime.", q.Get("SortBy"))
	}
	if f.Labels, err = labelFilter(q.Get("Labels")); err != nil {
		return nil, err
	}
	reply := &InstanceList{Instances: []Instance{}}
	err = s.store.View(ctx, func(tx meta.Tx) error {
		ins, n, err := tx.ListDSWInstances(f)
		for _, in := range ins {
			settle(in, f.Now)
			reply.Instances = append(reply.Instances, instanceView(in, nil))
		}
		reply.TotalCount = int64(n)
		return err
	})
	return reply, wrap(err)
}

// labelFilter decodes the Labels query of ListInstances: a JSON object
// {"key":"value"} or a list [{"Key","Value"}], at most 4 pairs.
func labelFilter(s string) ([]meta.TagFilter, error) {
	if s == "" {
		return nil, nil
	}
	var out []meta.TagFilter
	var obj map[string]string
	var list []label
	switch {
	case json.Unmarshal([]byte(s), &obj) == nil:
		for k, v := range obj {
			out = append(out, meta.TagFilter{Key: k, Value: v, HasValue: true})
		}
	case json.Unmarshal([]byte(s), &list) == nil:
		for _, l := range list {
			out = append(out, meta.TagFilter{Key: l.Key, Value: l.Value, HasValue: true})
		}
	default:
		return nil, invalid("Labels must be a JSON object of key/value pairs.")
	}
	if len(out) > 4 {
		return nil, invalid("Labels holds more than 4 pairs.")
	}
	return out, nil
}
