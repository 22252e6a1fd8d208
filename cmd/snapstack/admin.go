package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"sort"
	"strings"
	"time"

	"github.com/snapstack/snapstack/internal/api"
	"github.com/snapstack/snapstack/internal/app"
	"github.com/snapstack/snapstack/internal/ecs"
	"github.com/snapstack/snapstack/internal/signature"
)

// runAdmin talks to a running service (started with --admin), signing its
// requests with the root key like any API client.
func runAdmin(ctx context.Context, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("admin", flag.ContinueOnError)
	endpoint := fs.String("endpoint", "http://127.0.0.1:9090", "snapstack API endpoint")
	data := fs.String("data", "./snapstack-data", "data directory holding the root key (unless SNAPSTACK_ACCESS_KEY_ID/SECRET are set)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	rest := fs.Args()
	if len(rest) == 1 && rest[0] == "states" {
		states := ecs.AdminStates()
		types := make([]string, 0, len(states))
		for t := range states {
			types = append(types, t)
		}
		sort.Strings(types)
		for _, t := range types {
			fmt.Fprintf(stdout, "%s: %s\n", t, strings.Join(states[t], " "))
		}
		return nil
	}
	var params url.Values
	switch {
	case len(rest) == 5 && rest[0] == "set":
		params = url.Values{"Action": {"SetState"}, "ResourceType": {rest[1]}, "ResourceId": {rest[2]}, "State": {rest[3]}, "Value": {rest[4]}}
		if rest[1] == "account" && rest[2] == "-" {
			params.Del("ResourceId")
		}
	case len(rest) == 2 && rest[0] == "verify":
		params = url.Values{"Action": {"VerifySnapshot"}, "SnapshotId": {rest[1]}}
	case len(rest) == 1 && rest[0] == "collect":
		params = url.Values{"Action": {"CollectGarbage"}}
	default:
		return fmt.Errorf("usage: snapstack admin set account|instance|disk ID STATE true|false | verify SNAPSHOT | collect | states")
	}
	params.Set("Version", api.AdminVersion)
	params.Set("Format", "JSON")
	id, secret := os.Getenv("SNAPSTACK_ACCESS_KEY_ID"), os.Getenv("SNAPSTACK_ACCESS_KEY_SECRET")
	if id == "" {
		k, err := app.ReadKeyFile(*data)
		if err != nil {
			return fmt.Errorf("root key: %w", err)
		}
		id, secret = k.AccessKeyID, k.AccessKeySecret
	}
	signature.SignRPC("POST", params, id, secret, "", time.Now().UTC())
	req, err := http.NewRequestWithContext(ctx, "POST", strings.TrimSuffix(*endpoint, "/")+"/", strings.NewReader(params.Encode()))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		var e struct{ Code, Message string }
		json.Unmarshal(body, &e)
		return fmt.Errorf("%s (HTTP %d): %s", e.Code, resp.StatusCode, e.Message)
	}
	switch rest[0] {
	case "set":
		fmt.Fprintf(stdout, "%s %s: %s = %s\n", rest[1], rest[2], rest[3], rest[4])
	case "verify":
		var v struct {
			CheckedChunks, CheckedObjects, DamagedChunks int
			Healthy                                      bool
			Problem                                      string
		}
		json.Unmarshal(body, &v)
		if !v.Healthy {
			return fmt.Errorf("snapshot %s is damaged: %d chunks damaged, %d good; first: %s", rest[1], v.DamagedChunks, v.CheckedChunks, v.Problem)
		}
		fmt.Fprintf(stdout, "snapshot %s: %d chunks verified (%d stored objects)\n", rest[1], v.CheckedChunks, v.CheckedObjects)
	case "collect":
		var c struct {
			RemovedChunks, RemovedRegistryBlobs int
			RemovedRegistryBytes                int64
		}
		json.Unmarshal(body, &c)
		fmt.Fprintf(stdout, "removed %d unreferenced chunks, and %d registry blobs (%d bytes)\n", c.RemovedChunks, c.RemovedRegistryBlobs, c.RemovedRegistryBytes)
	}
	return nil
}
