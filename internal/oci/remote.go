package oci

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
)

// Credential is a registry login.
type Credential struct {
	Username string `json:"username"`
	Password string `json:"password"`
}

// Config tells the Builder how to reach registries.
type Config struct {
	// Credentials by registry host ("registry.cn-hangzhou.aliyuncs.com",
	// "127.0.0.1:5000"); registries not listed are used anonymously.
	Credentials map[string]Credential
	// Insecure lists registry hosts reached over plain HTTP. Loopback,
	// localhost and RFC 1918 hosts may always use plain HTTP.
	Insecure []string
	// Embedded serves references that name the embedded registry
	// (Ref.Embedded) in-process.
	Embedded http.RoundTripper
	// Transport reaches every other registry (nil: go-containerregistry's
	// default transport, with HeaderTimeout).
	Transport http.RoundTripper
	// HeaderTimeout bounds the wait for a registry's response headers
	// once a request is sent, on the default transport (0:
	// DefaultHeaderTimeout): a registry that takes a connection and never
	// answers fails the request instead of holding a snapshot in Saving
	// forever. Bodies (layers) may take as long as they take.
	HeaderTimeout time.Duration
}

// DefaultHeaderTimeout is Config.HeaderTimeout when unset: far more than
// a registry needs to answer, including the digest check that ends a
// blob upload.
const DefaultHeaderTimeout = 2 * time.Minute

// Ref is an image reference and where it is served.
type Ref struct {
	Name     string // e.g. "127.0.0.1:5000/ns/repo:tag"
	Embedded bool   // served by the embedded registry
}

// Errors of Build and Exists, compared with errors.Is. Each wraps the
// registry's answer, which is safe to show to the caller.
var (
	ErrTagExists   = errors.New("the image tag already exists")
	ErrPullBase    = errors.New("the base image could not be pulled")
	ErrPush        = errors.New("the image could not be pushed")
	ErrUnreachable = errors.New("the registry could not be reached")
	ErrDenied      = errors.New("the registry denied access")
)

// Builder builds and pushes images.
type Builder struct {
	cfg Config
}

// NewBuilder returns a Builder.
func NewBuilder(cfg Config) *Builder {
	if cfg.Transport == nil {
		if cfg.HeaderTimeout <= 0 {
			cfg.HeaderTimeout = DefaultHeaderTimeout
		}
		t, ok := remote.DefaultTransport.(*http.Transport)
		if !ok {
			t = http.DefaultTransport.(*http.Transport)
		}
		t = t.Clone()
		t.ResponseHeaderTimeout = cfg.HeaderTimeout
		cfg.Transport = t
	}
	return &Builder{cfg: cfg}
}

// parse returns the go-containerregistry reference of r.
func (b *Builder) parse(r Ref) (name.Reference, error) {
	var opts []name.Option
	host, _, _ := strings.Cut(r.Name, "/")
	for _, h := range b.cfg.Insecure {
		if strings.EqualFold(h, host) {
			opts = append(opts, name.Insecure)
		}
	}
	return name.ParseReference(r.Name, opts...)
}

// options are the remote options to reach ref.
func (b *Builder) options(ctx context.Context, ref name.Reference, embedded bool) []remote.Option {
	opts := []remote.Option{remote.WithContext(ctx), remote.WithUserAgent("snapstack")}
	if embedded && b.cfg.Embedded != nil {
		return append(opts, remote.WithTransport(b.cfg.Embedded))
	}
	opts = append(opts, remote.WithTransport(b.cfg.Transport))
	if c, ok := b.cfg.Credentials[ref.Context().RegistryStr()]; ok {
		opts = append(opts, remote.WithAuth(authn.FromConfig(authn.AuthConfig{Username: c.Username, Password: c.Password})))
	}
	return opts
}

// Exists reports whether ref names a manifest.
func (b *Builder) Exists(ctx context.Context, r Ref) (bool, error) {
	ref, err := b.parse(r)
	if err != nil {
		return false, err
	}
	_, err = remote.Head(ref, b.options(ctx, ref, r.Embedded)...)
	var te *transport.Error
	switch {
	case err == nil:
		return true, nil
	case errors.As(err, &te) && te.StatusCode == http.StatusNotFound:
		return false, nil
	}
	return false, classify(ErrUnreachable, err)
}

// classify wraps a registry error under kind, or ErrDenied for 401/403.
func classify(kind, err error) error {
	var te *transport.Error
	if errors.As(err, &te) && (te.StatusCode == http.StatusUnauthorized || te.StatusCode == http.StatusForbidden) {
		kind = ErrDenied
	}
	if errors.Is(err, context.Canceled) {
		return err
	}
	return fmt.Errorf("%w: %s", kind, summary(err))
}

// summary is the registry's answer without request details: the
// distribution error, or the network failure; anything else (a local
// cause) is not described.
func summary(err error) string {
	var te *transport.Error
	if errors.As(err, &te) {
		if len(te.Errors) > 0 {
			return fmt.Sprintf("HTTP %d %s: %s", te.StatusCode, te.Errors[0].Code, te.Errors[0].Message)
		}
		return fmt.Sprintf("HTTP %d", te.StatusCode)
	}
	var ue *url.Error
	if errors.As(err, &ue) {
		host := ue.URL
		if u, perr := url.Parse(ue.URL); perr == nil {
			host = u.Host
		}
		var oe *net.OpError
		if errors.As(ue.Err, &oe) {
			return fmt.Sprintf("%s %s: %s", oe.Op, host, oe.Err)
		}
		return host + ": " + ue.Err.Error()
	}
	return "unexpected error"
}
