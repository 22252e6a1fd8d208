package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/snapstack/snapstack/internal/app"
	"github.com/snapstack/snapstack/internal/chunk"
	"github.com/snapstack/snapstack/internal/ecs"
	"github.com/snapstack/snapstack/internal/nbd"
	"github.com/snapstack/snapstack/internal/oci"
)

// fileConfig is the optional JSON configuration file (--config). Flags
// given on the command line win over it.
type fileConfig struct {
	Listen               string       `json:"listen"`
	NBDListen            string       `json:"nbd_listen"`
	Data                 string       `json:"data"`
	Admin                bool         `json:"admin"`
	Regions              []ecs.Region `json:"regions"`
	DefaultRegion        string       `json:"default_region"`
	SnapshotQuotaPerDisk int          `json:"snapshot_quota_per_disk"`
	RequireInUseDisk     bool         `json:"require_in_use_disk"`
	TransitionDelay      string       `json:"transition_delay"`
	RetentionInterval    string       `json:"retention_interval"`
	Compression          string       `json:"compression"`
	NBDMaxConns          int          `json:"nbd_max_conns"`
	NBDBufferMiB         int64        `json:"nbd_buffer_mib"`
	NBDReplyTimeout      string       `json:"nbd_reply_timeout"`
	DSW                  dswConfig    `json:"dsw"`
}

// dswConfig is the PAI-DSW part of the configuration file.
type dswConfig struct {
	// RegistryCredentials: logins to external registries by host.
	RegistryCredentials map[string]oci.Credential `json:"registry_credentials"`
	InsecureRegistries  []string                  `json:"insecure_registries"`
	RegistryAnonymous   bool                      `json:"registry_anonymous"`
	RegistryHosts       []string                  `json:"registry_hosts"`
	HostPathRoots       []string                  `json:"host_path_roots"`
}

type serveConfig struct {
	listen, nbdListen, data string
	admin                   bool
	ecs                     ecs.Config
	dsw                     app.DSWConfig
	retentionEvery          time.Duration
	compression             string     // of new chunks (chunk.ParseCompression)
	nbdLimits               nbd.Limits // Memory is set from nbdBufferMiB once both sources are read
	nbdBufferMiB            int64
}

// regionFlags collects --region ID=ZONE,ZONE flags.
type regionFlags []ecs.Region

func (r *regionFlags) String() string { return fmt.Sprint(*r) }

func (r *regionFlags) Set(v string) error {
	id, zones, ok := strings.Cut(v, "=")
	if !ok || id == "" || zones == "" {
		return fmt.Errorf("want ID=ZONE[,ZONE...], got %q", v)
	}
	*r = append(*r, ecs.Region{ID: id, LocalName: id, Zones: strings.Split(zones, ","), IDCode: regionCode(id)})
	return nil
}

// regionCode is the short code of a region in resource IDs.
func regionCode(id string) string {
	known := map[string]string{"cn-hangzhou": "bp", "cn-shanghai": "uf", "cn-beijing": "2ze", "cn-shenzhen": "wz",
		"cn-qingdao": "m5e", "cn-zhangjiakou": "8vb", "cn-hongkong": "j6c", "ap-southeast-1": "t4n", "us-west-1": "rj9",
		"us-east-1": "0xi", "eu-central-1": "gw8"}
	if c, ok := known[id]; ok {
		return c
	}
	parts := strings.Split(id, "-")
	code := ""
	for _, p := range parts {
		if p != "" {
			code += p[:1]
		}
	}
	return code
}

// maxBufferMiB is the largest --nbd-buffer-mib (1 PiB: far beyond any
// machine, and its bytes still fit an int64).
const maxBufferMiB = 1 << 30

func parseServeFlags(args []string) (*serveConfig, error) {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	listen := fs.String("listen", "127.0.0.1:9090", "API listen address")
	nbdAddr := fs.String("nbd-listen", "127.0.0.1:10809", "NBD listen address")
	data := fs.String("data", "./snapstack-data", "data directory")
	admin := fs.Bool("admin", false, "enable the admin actions (state injection)")
	cfgFile := fs.String("config", "", "JSON configuration file")
	quota := fs.Int("snapshot-quota", 0, "manual snapshots per disk (256; 64 is the older behaviour)")
	delay := fs.Duration("transition-delay", 0, "duration of instance and disk transitions (default 2s)")
	var regions regionFlags
	fs.Var(&regions, "region", "serve region ID with zones: ID=ZONE,ZONE (repeatable; replaces the default region)")
	defRegion := fs.String("default-region", "", "region of requests that name none")
	compression := fs.String("compression", "", "compression of new chunks: s2 (default), zstd (smaller, about 1.7x the CPU) or none")
	maxConns := fs.Int("nbd-max-conns", 0, fmt.Sprintf("NBD connections open at once (default %d)", nbd.DefaultMaxConns))
	bufferMiB := fs.Int64("nbd-buffer-mib", 0, fmt.Sprintf("MiB of NBD request buffers of all connections together (default %d)", nbd.DefaultMemory>>20))
	replyTimeout := fs.Duration("nbd-reply-timeout", 0, fmt.Sprintf("close an NBD connection whose client takes none of its replies for this long (default %v)", nbd.DefaultReplyTimeout))
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	c := &serveConfig{ecs: ecs.DefaultConfig(), retentionEvery: time.Minute}
	if *cfgFile != "" {
		raw, err := os.ReadFile(*cfgFile)
		if err != nil {
			return nil, err
		}
		var fc fileConfig
		if err := json.Unmarshal(raw, &fc); err != nil {
			return nil, fmt.Errorf("config %s: %w", *cfgFile, err)
		}
		if err := fc.apply(c); err != nil {
			return nil, fmt.Errorf("config %s: %w", *cfgFile, err)
		}
	}
	pick := func(name string, flagVal, cur string) string {
		if set[name] || cur == "" {
			return flagVal
		}
		return cur
	}
	c.listen, c.nbdListen, c.data = pick("listen", *listen, c.listen), pick("nbd-listen", *nbdAddr, c.nbdListen), pick("data", *data, c.data)
	if set["admin"] {
		c.admin = *admin
	}
	if set["snapshot-quota"] {
		c.ecs.SnapshotQuotaPerDisk = *quota
	}
	if set["transition-delay"] {
		c.ecs.TransitionDelay = *delay
	}
	if len(regions) > 0 {
		c.ecs.Regions = regions
		c.ecs.DefaultRegion = regions[0].ID
	}
	if *defRegion != "" {
		c.ecs.DefaultRegion = *defRegion
	}
	if set["compression"] {
		c.compression = *compression
	}
	if _, err := chunk.ParseCompression(c.compression); err != nil {
		return nil, err
	}
	if set["nbd-max-conns"] {
		c.nbdLimits.MaxConns = *maxConns
	}
	if set["nbd-buffer-mib"] {
		c.nbdBufferMiB = *bufferMiB
	}
	if c.nbdBufferMiB < 0 || c.nbdBufferMiB > maxBufferMiB {
		return nil, fmt.Errorf("nbd-buffer-mib (nbd_buffer_mib) %d: must be 0 (the default) to %d", c.nbdBufferMiB, maxBufferMiB)
	}
	c.nbdLimits.Memory = c.nbdBufferMiB << 20
	if set["nbd-reply-timeout"] {
		c.nbdLimits.ReplyTimeout = *replyTimeout
	}
	if c.nbdLimits.ReplyTimeout < 0 {
		return nil, fmt.Errorf("nbd-reply-timeout %v: must be 0 (the default) or more", c.nbdLimits.ReplyTimeout)
	}
	if c.nbdLimits.MaxConns < 0 {
		return nil, fmt.Errorf("nbd-max-conns %d: must be 0 (the default) or more", c.nbdLimits.MaxConns)
	}
	return c, nil
}

func (fc *fileConfig) apply(c *serveConfig) error {
	c.listen, c.nbdListen, c.data, c.admin = fc.Listen, fc.NBDListen, fc.Data, fc.Admin
	c.compression = fc.Compression
	c.nbdLimits.MaxConns, c.nbdBufferMiB = fc.NBDMaxConns, fc.NBDBufferMiB
	if len(fc.Regions) > 0 {
		for i := range fc.Regions {
			if fc.Regions[i].IDCode == "" {
				fc.Regions[i].IDCode = regionCode(fc.Regions[i].ID)
			}
		}
		c.ecs.Regions = fc.Regions
		c.ecs.DefaultRegion = fc.Regions[0].ID
	}
	if fc.DefaultRegion != "" {
		c.ecs.DefaultRegion = fc.DefaultRegion
	}
	if fc.SnapshotQuotaPerDisk > 0 {
		c.ecs.SnapshotQuotaPerDisk = fc.SnapshotQuotaPerDisk
	}
	c.ecs.RequireInUseDisk = fc.RequireInUseDisk
	c.dsw = app.DSWConfig{RegistryCredentials: fc.DSW.RegistryCredentials, InsecureRegistries: fc.DSW.InsecureRegistries,
		RegistryAnonymous: fc.DSW.RegistryAnonymous, RegistryHosts: fc.DSW.RegistryHosts, HostPathRoots: fc.DSW.HostPathRoots}
	for _, d := range []struct {
		s   string
		dst *time.Duration
	}{{fc.TransitionDelay, &c.ecs.TransitionDelay}, {fc.RetentionInterval, &c.retentionEvery}, {fc.NBDReplyTimeout, &c.nbdLimits.ReplyTimeout}} {
		if d.s == "" {
			continue
		}
		v, err := time.ParseDuration(d.s)
		if err != nil {
			return err
		}
		*d.dst = v
	}
	return nil
}
