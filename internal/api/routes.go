package api

import "github.com/snapstack/snapstack/internal/ecs"

// ECSVersion is the API version of the ECS actions.
const ECSVersion = "2014-05-26"

// AdminVersion is the Version of the admin actions (enabled by --admin).
const AdminVersion = "snapstack-admin"

// ECSActions maps the ECS 2014-05-26 actions to the service.
func ECSActions(s *ecs.Service) map[string]Handler {
	return map[string]Handler{
		"DescribeRegions":         s.DescribeRegions,
		"DescribeZones":           s.DescribeZones,
		"RunInstances":            s.RunInstances,
		"DescribeInstances":       s.DescribeInstances,
		"StartInstance":           s.StartInstance,
		"StopInstance":            s.StopInstance,
		"DeleteInstance":          s.DeleteInstance,
		"CreateDisk":              s.CreateDisk,
		"DescribeDisks":           s.DescribeDisks,
		"AttachDisk":              s.AttachDisk,
		"DetachDisk":              s.DetachDisk,
		"DeleteDisk":              s.DeleteDisk,
		"CreateSnapshot":          s.CreateSnapshot,
		"DescribeSnapshots":       s.DescribeSnapshots,
		"DeleteSnapshot":          s.DeleteSnapshot,
		"ModifySnapshotAttribute": s.ModifySnapshotAttribute,
		"ResetDisk":               s.ResetDisk,
	}
}

// AdminActions maps the admin actions to the service.
func AdminActions(s *ecs.Service) map[string]Handler {
	return map[string]Handler{"SetState": s.SetState}
}
