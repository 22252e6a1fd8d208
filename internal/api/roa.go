package api

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"

	"github.com/snapstack/snapstack/internal/apierr"
	"github.com/snapstack/snapstack/internal/ecs"
)

// ROA (REST) requests: method + path select the action (protocol.md 3.2);
// the signature schemes are the same as RPC's and are checked by
// authenticate. Replies and errors carry the envelope of the ROA products
// (RequestId, Success, Code, Message, HttpStatusCode).

// ROARequest is one authenticated ROA call.
type ROARequest struct {
	Caller ecs.Caller
	Host   string            // Host header
	Path   map[string]string // path parameters, percent-decoded
	Query  url.Values
	Body   []byte // raw body
}

// ROAHandler runs one ROA action.
type ROAHandler func(ctx context.Context, r *ROARequest) (any, error)

// ROARoute maps a method and a path pattern ("/api/v2/instances/{InstanceId}")
// to an action.
type ROARoute struct {
	Method  string
	Pattern string
	Action  string
	Handler ROAHandler
}

type roaGroup struct {
	prefix string // e.g. "/api/v2/"
	routes []ROARoute
}

type mount struct {
	prefix string
	h      http.Handler
}

// RegisterROA serves routes for every path under prefix.
func (s *Server) RegisterROA(prefix string, routes []ROARoute) {
	s.roa = append(s.roa, roaGroup{prefix: prefix, routes: routes})
}

// Mount serves every path under prefix with h, before (and instead of)
// the API authentication; h authenticates on its own.
func (s *Server) Mount(prefix string, h http.Handler) {
	s.mounts = append(s.mounts, mount{prefix: prefix, h: h})
}

// isROA reports whether a path belongs to a registered ROA prefix.
func (s *Server) isROA(p string) bool {
	for _, g := range s.roa {
		if strings.HasPrefix(p, g.prefix) || p+"/" == g.prefix {
			return true
		}
	}
	return false
}

// serveMounted serves mounted handlers and ROA paths; false leaves the
// request to RPC.
func (s *Server) serveMounted(w http.ResponseWriter, r *http.Request) bool {
	for _, m := range s.mounts {
		if strings.HasPrefix(r.URL.Path, m.prefix) || r.URL.Path+"/" == m.prefix {
			m.h.ServeHTTP(w, r)
			return true
		}
	}
	if !s.isROA(r.URL.Path) {
		return false
	}
	reqID := ecs.NewRequestID()
	action, err := s.serveROA(w, r, reqID)
	if err != nil {
		s.writeROAError(w, r, reqID, action, err)
	}
	return true
}

func (s *Server) serveROA(w http.ResponseWriter, r *http.Request, reqID string) (string, error) {
	c, err := s.authenticate(r)
	if err != nil {
		return actionOf(r), err
	}
	rawPath, _, _ := strings.Cut(r.RequestURI, "?")
	if strings.HasPrefix(rawPath, "http://") || strings.HasPrefix(rawPath, "https://") {
		rawPath = r.URL.EscapedPath()
	}
	route, params, ok := s.findROA(r.Method, rawPath)
	if !ok {
		return c.action, apierr.InvalidActionNotFound
	}
	res, err := route.Handler(r.Context(), &ROARequest{Caller: c.caller, Host: r.Host, Path: params, Query: c.params, Body: c.body})
	if err != nil {
		return route.Action, err
	}
	if rs, ok := res.(interface{ SetRequestID(string) }); ok {
		rs.SetRequestID(reqID)
	}
	body, err := json.Marshal(res)
	if err != nil {
		return route.Action, apierr.Internal(err)
	}
	s.log.Info("api", "request_id", reqID, "action", route.Action, "status", 200)
	w.Header().Set("Content-Type", "application/json;charset=utf-8")
	w.WriteHeader(http.StatusOK)
	w.Write(body)
	return route.Action, nil
}

// findROA matches the raw (still percent-encoded) path against the
// patterns; parameters are decoded and must not be empty.
func (s *Server) findROA(method, rawPath string) (ROARoute, map[string]string, bool) {
	segs := strings.Split(strings.TrimSuffix(rawPath, "/"), "/")
	for _, g := range s.roa {
		for _, rt := range g.routes {
			if rt.Method != method {
				continue
			}
			pat := strings.Split(rt.Pattern, "/")
			if len(pat) != len(segs) {
				continue
			}
			params := map[string]string{}
			ok := true
			for i, p := range pat {
				seg, err := url.PathUnescape(segs[i])
				if err != nil {
					ok = false
					break
				}
				if strings.HasPrefix(p, "{") && strings.HasSuffix(p, "}") {
					if seg == "" {
						ok = false
						break
					}
					params[p[1:len(p)-1]] = seg
				} else if p != seg {
					ok = false
					break
				}
			}
			if ok {
				return rt, params, true
			}
		}
	}
	return ROARoute{}, nil, false
}

// roaError is the error envelope of the ROA products: the fields every SDK
// reads (all strings) plus Success and HttpStatusCode.
type roaError struct {
	errorBody
	Success        bool
	HttpStatusCode int
}

// writeROAError renders err like writeError, in the ROA envelope. The
// cause of a 5xx is logged, never sent.
func (s *Server) writeROAError(w http.ResponseWriter, r *http.Request, reqID, action string, err error) {
	e := s.logError(reqID, action, err)
	body, _ := json.Marshal(roaError{errorBody: envelope(r, reqID, e), HttpStatusCode: e.HTTPStatus})
	w.Header().Set("Content-Type", "application/json;charset=utf-8")
	w.WriteHeader(e.HTTPStatus)
	w.Write(body)
}
