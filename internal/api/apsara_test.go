package api

import (
	"reflect"
	"testing"
)

// TestApsaraMergeJSONParams: a top-level list of scalars stays one
// JSON-array parameter (how ECS takes SnapshotIds, DiskIds, InstanceIds),
// a list of objects becomes a repeat list, an object Name.Key, and a list
// of scalars below the top level Name.N.
func TestApsaraMergeJSONParams(t *testing.T) {
	for _, tc := range []struct {
		name, body string
		want       map[string][]string
	}{
		{"scalar array", `{"SnapshotIds":["s-1","s-2"],"regionId":"cn-hangzhou"}`,
			map[string][]string{"SnapshotIds": {`["s-1","s-2"]`}, "regionId": {"cn-hangzhou"}}},
		{"mixed scalars", `{"X":[1,true,"a",null]}`, map[string][]string{"X": {`[1,true,"a",null]`}}},
		{"empty array", `{"DiskIds":[]}`, map[string][]string{"DiskIds": {`[]`}}},
		{"object array", `{"Tag":[{"Key":"k","Value":"v"},{"Key":"k2"}]}`,
			map[string][]string{"Tag.1.Key": {"k"}, "Tag.1.Value": {"v"}, "Tag.2.Key": {"k2"}}},
		{"nested object", `{"SystemDisk":{"Category":"cloud_essd","Size":40},"RetentionDays":5,"Skip":null}`,
			map[string][]string{"SystemDisk.Category": {"cloud_essd"}, "SystemDisk.Size": {"40"}, "RetentionDays": {"5"}}},
		{"nested scalar array", `{"NetworkInterface":[{"SecurityGroupIds":["sg-1","sg-2"]}],"Filter":{"Ids":["a"]}}`,
			map[string][]string{"NetworkInterface.1.SecurityGroupIds.1": {"sg-1"}, "NetworkInterface.1.SecurityGroupIds.2": {"sg-2"}, "Filter.Ids.1": {"a"}}},
	} {
		got := map[string][]string{}
		if err := mergeJSONParams(got, []byte(tc.body)); err != nil {
			t.Errorf("%s: %v", tc.name, err)
			continue
		}
		if !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%s: %s gives %v, want %v", tc.name, tc.body, got, tc.want)
		}
	}
	if err := mergeJSONParams(map[string][]string{}, []byte(`["s-1"]`)); err == nil {
		t.Error("a top-level JSON array body was accepted")
	}
}
