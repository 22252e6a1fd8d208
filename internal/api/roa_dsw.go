package api

import (
	"context"

	"github.com/snapstack/snapstack/internal/dsw"
)

// DSWVersion is the API version of PAI-DSW (x-acs-version).
const DSWVersion = "2022-01-01"

// DSWPrefix is the path prefix of the PAI-DSW actions.
const DSWPrefix = "/api/v2/"

// DSWRoutes maps the PAI-DSW 2022-01-01 actions (spec/actions.md 4) to the
// service.
func DSWRoutes(s *dsw.Service) []ROARoute {
	h := func(f func(context.Context, *dsw.Call) (any, error)) ROAHandler {
		return func(ctx context.Context, r *ROARequest) (any, error) {
			return f(ctx, &dsw.Call{AccountID: r.Caller.AccountID, Host: r.Host, Path: r.Path, Query: r.Query, Body: r.Body})
		}
	}
	const inst = "/api/v2/instances/{InstanceId}"
	return []ROARoute{
		{"POST", "/api/v2/instances", "CreateInstance", h(s.CreateInstance)},
		{"GET", "/api/v2/instances", "ListInstances", h(s.ListInstances)},
		{"GET", inst, "GetInstance", h(s.GetInstance)},
		{"DELETE", inst, "DeleteInstance", h(s.DeleteInstance)},
		{"PUT", inst + "/start", "StartInstance", h(s.StartInstance)},
		{"PUT", inst + "/stop", "StopInstance", h(s.StopInstance)},
		{"POST", inst + "/snapshots", "CreateInstanceSnapshot", h(s.CreateInstanceSnapshot)},
		{"GET", inst + "/snapshots", "ListInstanceSnapshot", h(s.ListInstanceSnapshot)},
		{"GET", inst + "/snapshots/{SnapshotId}", "GetInstanceSnapshot", h(s.GetInstanceSnapshot)},
		{"DELETE", inst + "/snapshots/{SnapshotId}", "DeleteInstanceSnapshot", h(s.DeleteInstanceSnapshot)},
	}
}
