package app

import (
	"context"
	"crypto/subtle"
	"fmt"
	"path/filepath"
	"time"

	"github.com/snapstack/snapstack/internal/api"
	"github.com/snapstack/snapstack/internal/dsw"
	"github.com/snapstack/snapstack/internal/iam"
	"github.com/snapstack/snapstack/internal/meta"
	"github.com/snapstack/snapstack/internal/oci"
	"github.com/snapstack/snapstack/internal/registry"
)

// DSWConfig configures PAI-DSW and the embedded OCI registry.
type DSWConfig struct {
	// RegistryCredentials are the logins to external registries, by host
	// ("registry.cn-hangzhou.aliyuncs.com", "127.0.0.1:5000").
	RegistryCredentials map[string]oci.Credential
	// InsecureRegistries are external registry hosts reached over plain
	// HTTP (loopback, localhost and RFC 1918 addresses always may).
	InsecureRegistries []string
	// RegistryAnonymous serves the embedded registry without
	// authentication; by default it asks for HTTP Basic credentials
	// (an AccessKeyId and its secret).
	RegistryAnonymous bool
	// RegistryHosts are more names of the embedded registry in image
	// references (besides the API listen address and the Host a request
	// came to), e.g. a DNS name clients use.
	RegistryHosts []string
	// HostPathRoots are the directories under which an instance's upper
	// directory may be placed with the snapstack.io/upper-dir label.
	HostPathRoots []string
	// TransitionDelay is how long instances stay Creating/Starting/Stopping.
	TransitionDelay time.Duration
}

// startDSW opens the embedded registry (<data>/registry, served under
// /v2/) and the PAI-DSW service (<data>/dsw, served under /api/v2/), and
// fails snapshots a previous run left unfinished.
func (a *App) startDSW(ctx context.Context, cfg Config, store meta.Store, h *api.Server, keys *iam.Keys) error {
	var auth func(ctx context.Context, user, password string) bool
	if !cfg.DSW.RegistryAnonymous {
		auth = func(ctx context.Context, user, password string) bool {
			secret, _, err := keys.Lookup(ctx, user)
			return err == nil && subtle.ConstantTimeCompare([]byte(secret), []byte(password)) == 1
		}
	}
	reg, err := registry.New(filepath.Join(cfg.DataDir, "registry"), registry.Options{Authenticate: auth, Log: cfg.Log, Now: cfg.Clock.Now})
	if err != nil {
		return err
	}
	b := oci.NewBuilder(oci.Config{Credentials: cfg.DSW.RegistryCredentials, Insecure: cfg.DSW.InsecureRegistries, Embedded: reg.Transport()})
	svc, err := dsw.New(store, b, cfg.Clock, dsw.Config{
		Dir:             filepath.Join(cfg.DataDir, "dsw"),
		HostPathRoots:   cfg.DSW.HostPathRoots,
		EmbeddedHosts:   append([]string{a.Addr}, cfg.DSW.RegistryHosts...),
		TransitionDelay: cfg.DSW.TransitionDelay,
	}, cfg.Log)
	if err != nil {
		return err
	}
	if err := svc.Resume(ctx); err != nil {
		svc.Close()
		return fmt.Errorf("resume dsw snapshots: %w", err)
	}
	h.Mount("/v2/", reg)
	a.registry = reg
	h.RegisterROA(api.DSWPrefix, api.DSWRoutes(svc))
	a.DSW = svc
	return nil
}

// closeDSW cancels the snapshots under way and waits for them.
func (a *App) closeDSW() error {
	if a.DSW != nil {
		a.DSW.Close()
	}
	return nil
}
