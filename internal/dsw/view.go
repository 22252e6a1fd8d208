package dsw

import (
	"encoding/json"

	"github.com/snapstack/snapstack/internal/meta"
)

// Envelope is the part of every DSW response besides the result fields.
// The edge fills it on success through SetRequestID.
type Envelope struct {
	RequestId      string
	Success        bool
	Code           string
	Message        string
	HttpStatusCode int
}

// SetRequestID marks the response successful under id.
func (e *Envelope) SetRequestID(id string) {
	e.RequestId, e.Success, e.HttpStatusCode = id, true, 200
}

// IDReply is the reply of the instance actions that return only the ID.
type IDReply struct {
	Envelope
	InstanceId string
}

// SnapshotIDReply is the reply of Create/DeleteInstanceSnapshot.
type SnapshotIDReply struct {
	Envelope
	InstanceId string
	SnapshotId string
}

// Label is a {Key, Value} pair.
type Label struct {
	Key   string
	Value string
}

// Snapshot is the snapshot object of Get/ListInstanceSnapshot.
type Snapshot struct {
	InstanceId      string
	SnapshotId      string
	SnapshotName    string
	Status          string
	ImageId         string
	ImageUrl        string
	ReasonCode      string
	ReasonMessage   string
	GmtCreateTime   string
	GmtModifiedTime string
	Labels          []Label
	ExcludePaths    []string
}

// SnapshotReply is the reply of GetInstanceSnapshot.
type SnapshotReply struct {
	Envelope
	Snapshot
}

// SnapshotList is the reply of ListInstanceSnapshot.
type SnapshotList struct {
	Envelope
	TotalCount int64
	Snapshots  []Snapshot
}

// LatestSnapshot is an instance's most recent snapshot.
type LatestSnapshot struct {
	ImageId         string
	ImageUrl        string
	RepositoryUrl   string
	Status          string
	ReasonCode      string
	ReasonMessage   string
	GmtCreateTime   string
	GmtModifiedTime string
}

// Instance is the instance object of Get/ListInstances.
type Instance struct {
	WorkspaceId          string
	InstanceId           string
	InstanceName         string
	EcsSpec              string
	Status               string
	ImageId              string
	ImageUrl             string
	GmtCreateTime        string
	GmtModifiedTime      string
	UserId               string
	PaymentType          string
	AcceleratorType      string
	Accessibility        string
	ResourceId           string
	Priority             int64
	ReasonCode           string
	ReasonMessage        string
	RequestedResource    json.RawMessage
	EnvironmentVariables map[string]string
	Labels               []Label
	LatestSnapshot       *LatestSnapshot `json:",omitempty"`
}

// InstanceReply is the reply of GetInstance (the instance at top level).
type InstanceReply struct {
	Envelope
	Instance
}

// InstanceList is the reply of ListInstances.
type InstanceList struct {
	Envelope
	TotalCount int64
	Instances  []Instance
}

func labels(ts []meta.Tag) []Label {
	out := make([]Label, len(ts))
	for i, t := range ts {
		out[i] = Label{t.Key, t.Value}
	}
	return out
}

func snapshotView(sn *meta.DSWSnapshot) Snapshot {
	ex := make([]string, len(sn.ExcludePaths))
	for i, p := range sn.ExcludePaths {
		ex[i] = "/" + p
	}
	return Snapshot{InstanceId: sn.InstanceID, SnapshotId: sn.ID, SnapshotName: sn.Name, Status: sn.Status,
		ImageId: sn.ImageID, ImageUrl: sn.ImageURL, ReasonCode: sn.ReasonCode, ReasonMessage: sn.ReasonMessage,
		GmtCreateTime: timeStr(sn.CreatedAt), GmtModifiedTime: timeStr(sn.ModifiedAt), Labels: labels(sn.Labels), ExcludePaths: ex}
}

func instanceView(in *meta.DSWInstance, latest *meta.DSWSnapshot) Instance {
	rr := json.RawMessage("{}")
	if in.RequestedResource != "" {
		rr = json.RawMessage(in.RequestedResource)
	}
	env := in.Env
	if env == nil {
		env = map[string]string{}
	}
	v := Instance{WorkspaceId: in.WorkspaceID, InstanceId: in.ID, InstanceName: in.Name, EcsSpec: in.EcsSpec, Status: in.Status,
		ImageId: in.ImageID, ImageUrl: in.ImageURL, GmtCreateTime: timeStr(in.CreatedAt), GmtModifiedTime: timeStr(in.ModifiedAt),
		UserId: in.AccountID, PaymentType: "PayAsYouGo", AcceleratorType: "CPU", Accessibility: in.Accessibility,
		ResourceId: in.ResourceID, Priority: int64(in.Priority), ReasonCode: in.ReasonCode, ReasonMessage: in.ReasonMessage,
		RequestedResource: rr, EnvironmentVariables: env, Labels: labels(in.Labels)}
	if latest != nil {
		repo := latest.ImageURL
		if i := lastColon(repo); i > 0 {
			repo = repo[:i]
		}
		v.LatestSnapshot = &LatestSnapshot{ImageId: latest.ImageID, ImageUrl: latest.ImageURL, RepositoryUrl: repo,
			Status: latest.Status, ReasonCode: latest.ReasonCode, ReasonMessage: latest.ReasonMessage,
			GmtCreateTime: timeStr(latest.CreatedAt), GmtModifiedTime: timeStr(latest.ModifiedAt)}
	}
	return v
}

// lastColon is the index of the tag separator of a reference, or -1.
func lastColon(ref string) int {
	for i := len(ref) - 1; i >= 0 && ref[i] != '/'; i-- {
		if ref[i] == ':' {
			return i
		}
	}
	return -1
}
