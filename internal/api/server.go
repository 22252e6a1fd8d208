// Package api is the HTTP edge of snapstack: it authenticates requests
// with the Alibaba Cloud signature schemes, decodes RPC parameters, routes
// each Action to its product service and renders replies and errors the
// way the official SDKs expect (spec/protocol.md section 5).
package api

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/snapstack/snapstack/internal/apierr"
	"github.com/snapstack/snapstack/internal/clock"
	"github.com/snapstack/snapstack/internal/ecs"
	"github.com/snapstack/snapstack/internal/param"
	"github.com/snapstack/snapstack/internal/signature"
)

// Handler runs one action.
type Handler func(ctx context.Context, c ecs.Caller, p param.Values) (any, error)

// Keys resolves AccessKeys and records nonces.
type Keys interface {
	// Lookup returns the secret and account of an AccessKeyId; an
	// unknown key is an error for which IsUnknownKey is true.
	Lookup(ctx context.Context, id string) (secret, accountID string, err error)
	// UseNonce records a nonce until expires; false when it was seen.
	UseNonce(ctx context.Context, keyID, nonce string, now, expires time.Time) (bool, error)
}

// Options configure the edge.
type Options struct {
	// TimeWindow is the accepted clock skew of signed timestamps; 0
	// disables the check (tests replaying fixed-time vectors).
	TimeWindow time.Duration
	// CheckNonce rejects a reused SignatureNonce within TimeWindow.
	CheckNonce bool
	// MaxBody is the largest request body accepted.
	MaxBody int64
	// BodyTimeout bounds the reading of a request's body (0: none); the
	// registry's uploads, mounted beside the API, are not bounded by it.
	BodyTimeout time.Duration
}

// DefaultOptions are the production settings.
func DefaultOptions() Options {
	return Options{TimeWindow: 15 * time.Minute, CheckNonce: true, MaxBody: 1 << 20, BodyTimeout: time.Minute}
}

// Server is the API http.Handler.
type Server struct {
	keys       Keys
	unknownKey func(error) bool
	clock      clock.Clock
	log        *slog.Logger
	opts       Options
	// versions maps an API Version to its actions.
	versions map[string]map[string]Handler
	ready    func() bool
	roa      []roaGroup // ROA routes by path prefix (roa.go)
	mounts   []mount    // handlers served before authentication (roa.go)
}

// New returns a Server. unknownKey tells Keys' unknown-key error apart.
func New(keys Keys, unknownKey func(error) bool, clk clock.Clock, log *slog.Logger, opts Options) *Server {
	return &Server{keys: keys, unknownKey: unknownKey, clock: clk, log: log, opts: opts,
		versions: map[string]map[string]Handler{}, ready: func() bool { return true }}
}

// Register adds the actions of one API version.
func (s *Server) Register(version string, actions map[string]Handler) {
	m := s.versions[version]
	if m == nil {
		m = map[string]Handler{}
		s.versions[version] = m
	}
	for name, h := range actions {
		m[name] = h
	}
}

// SetReady sets the readiness probe of /healthz.
func (s *Server) SetReady(f func() bool) { s.ready = f }

// ServeHTTP implements http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	// Every request's body must arrive within BodyTimeout: API requests
	// are small (MaxBody), and a client that trickles a body, or declares
	// one it never sends, does not hold a connection for long, whatever
	// the path (net/http reads an unread body after the handler returns).
	// A mounted handler may lift the deadline once it has authenticated a
	// long upload. (net/http lifts the deadline when the body is read,
	// before its background read that notices a client going away, so a
	// long action keeps its context; there is no write deadline, since an
	// action may work longer before it replies.)
	if s.opts.BodyTimeout > 0 {
		http.NewResponseController(w).SetReadDeadline(time.Now().Add(s.opts.BodyTimeout))
	}
	if r.URL.Path == "/healthz" {
		if !s.ready() {
			http.Error(w, "starting", http.StatusServiceUnavailable)
			return
		}
		io.WriteString(w, "ok\n")
		return
	}
	if s.serveMounted(w, r) {
		return
	}
	if strings.HasPrefix(r.URL.Path, apsaraPrefix) {
		s.serveApsara(w, r)
		return
	}
	reqID := ecs.NewRequestID()
	action, format, err := s.serveRPC(w, r, reqID)
	if err != nil {
		s.writeError(w, r, reqID, action, err)
		return
	}
	_ = format
}

// call is one authenticated RPC request.
type call struct {
	caller  ecs.Caller
	params  url.Values
	action  string
	version string
	body    []byte // raw body (JSON bodies)
	scheme  signature.Scheme
}

func (s *Server) serveRPC(w http.ResponseWriter, r *http.Request, reqID string) (string, string, error) {
	c, err := s.authenticate(r)
	if err != nil {
		return actionOf(r), "", err
	}
	actions, ok := s.versions[c.version]
	if !ok {
		if c.version == "" {
			return c.action, "", apierr.MissingParameter("Version")
		}
		return c.action, "", apierr.UnsupportedVersion.WithMessagef("Specified parameter Version %q is not valid.", c.version)
	}
	if c.action == "" {
		return "", "", apierr.MissingParameter("Action")
	}
	h, ok := actions[c.action]
	if !ok {
		return c.action, "", apierr.InvalidActionNotFound
	}
	res, err := h(r.Context(), c.caller, param.New(c.params))
	if err != nil {
		return c.action, "", err
	}
	if rs, ok := res.(interface{ SetRequestID(string) }); ok {
		rs.SetRequestID(reqID)
	}
	format := c.params.Get("Format")
	s.log.Info("api", "request_id", reqID, "action", c.action, "status", 200)
	return c.action, format, writeSuccess(w, c.action, format, res)
}

func actionOf(r *http.Request) string {
	if a := r.URL.Query().Get("Action"); a != "" {
		return a
	}
	return r.Header.Get("x-acs-action")
}

// authenticate verifies the signature, the timestamp window and the nonce,
// and returns the decoded call.
func (s *Server) authenticate(r *http.Request) (*call, error) {
	body, err := io.ReadAll(io.LimitReader(r.Body, s.opts.MaxBody+1))
	if err != nil {
		return nil, apierr.InvalidParameter("Body", "The request body could not be read.")
	}
	if int64(len(body)) > s.opts.MaxBody {
		return nil, apierr.New("RequestEntityTooLarge", 413, "The request body is too large.")
	}
	rawPath, rawQuery, _ := strings.Cut(r.RequestURI, "?")
	if strings.HasPrefix(rawPath, "http://") || strings.HasPrefix(rawPath, "https://") {
		rawPath, rawQuery = r.URL.EscapedPath(), r.URL.RawQuery
	}
	sreq := &signature.Request{Method: r.Method, RawPath: rawPath, RawQuery: rawQuery, Host: r.Host, Header: r.Header, Body: body}
	signed, err := signature.Parse(sreq)
	switch {
	case errors.Is(err, signature.ErrMissingSignature):
		return nil, apierr.MissingSignature
	case errors.Is(err, signature.ErrUnsupportedAlgorithm):
		return nil, apierr.UnsupportedSigMethod
	case err != nil:
		return nil, apierr.IncompleteSignature
	}
	secret, accountID, err := s.keys.Lookup(r.Context(), signed.AccessKeyID)
	if err != nil {
		if s.unknownKey(err) {
			return nil, apierr.InvalidAccessKeyID
		}
		return nil, apierr.Internal(err)
	}
	switch err := signed.Verify(secret); {
	case errors.Is(err, signature.ErrContentHashMismatch):
		return nil, apierr.ContentSHA256Mismatch
	case err != nil:
		return nil, apierr.SignatureDoesNotMatch
	}
	now := s.clock.Now()
	if s.opts.TimeWindow > 0 {
		if signed.Time.IsZero() {
			return nil, apierr.InvalidTimeStampFormat
		}
		if d := now.Sub(signed.Time); d > s.opts.TimeWindow || d < -s.opts.TimeWindow {
			return nil, apierr.InvalidTimeStamp
		}
	}
	if s.opts.CheckNonce && signed.Nonce != "" {
		window := s.opts.TimeWindow
		if window <= 0 {
			window = 15 * time.Minute
		}
		fresh, err := s.keys.UseNonce(r.Context(), signed.AccessKeyID, signed.Nonce, now, now.Add(2*window))
		if err != nil {
			return nil, apierr.Internal(err)
		}
		if !fresh {
			return nil, apierr.SignatureNonceUsed
		}
	}
	c := &call{caller: ecs.Caller{AccountID: accountID, AccessKeyID: signed.AccessKeyID}, body: body, scheme: signed.Scheme}
	// What each signature covers decides where it is accepted: an RPC
	// signature covers the method and the parameters, not the path nor a
	// JSON body, so it authorises RPC requests only (on the Apsara route,
	// the action in the path must be the signed Action: see apsaraCall);
	// a ROA signature covers a body only through Content-MD5.
	rpcRoute := rawPath == "/" || strings.HasPrefix(r.URL.Path, apsaraPrefix)
	switch {
	case signed.Scheme == signature.SchemeRPC && !rpcRoute:
		if s.isROA(r.URL.Path) {
			return nil, apierr.IncompleteSignature.WithMessage("An RPC signature does not cover the path or the body of a ROA request: sign it with ACS3 or ROA.")
		}
		return nil, apierr.InvalidActionNotFound
	case signed.Scheme == signature.SchemeROA && rpcRoute && len(body) > 0 && r.Header.Get("Content-MD5") == "":
		return nil, apierr.IncompleteSignature.WithMessage("A ROA signature covers a request body only through Content-MD5.")
	case signed.Scheme == signature.SchemeACS3 && !rpcRoute && !s.isROA(r.URL.Path):
		return nil, apierr.InvalidActionNotFound
	}
	if signed.Scheme == signature.SchemeRPC {
		c.params = signed.Params
	} else {
		c.params, err = rpcParams(r, rawQuery, body)
		if err != nil {
			return nil, err
		}
	}
	// An RPC signature covers the parameters only, so the action and
	// version come from them; an ACS3 one may name them in its signed
	// x-acs-action and x-acs-version headers instead.
	c.action = c.params.Get("Action")
	c.version = c.params.Get("Version")
	if signed.Scheme == signature.SchemeACS3 {
		if c.action == "" {
			c.action = r.Header.Get("x-acs-action")
		}
		if c.version == "" {
			c.version = r.Header.Get("x-acs-version")
		}
	}
	return c, nil
}

// rpcParams merges the decoded query and form body of an ACS3 request.
func rpcParams(r *http.Request, rawQuery string, body []byte) (url.Values, error) {
	q, err := url.ParseQuery(rawQuery)
	if err != nil {
		return nil, apierr.InvalidParameter("Query", "The query string is malformed.")
	}
	if strings.HasPrefix(strings.ToLower(r.Header.Get("Content-Type")), "application/x-www-form-urlencoded") && len(body) > 0 {
		f, err := url.ParseQuery(string(body))
		if err != nil {
			return nil, apierr.InvalidParameter("Body", "The form body is malformed.")
		}
		for k, v := range f {
			q[k] = append(q[k], v...)
		}
	}
	return q, nil
}
