package api

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"

	"github.com/snapstack/snapstack/internal/apierr"
	"github.com/snapstack/snapstack/internal/ecs"
	"github.com/snapstack/snapstack/internal/param"
	"github.com/snapstack/snapstack/internal/signature"
)

// The Apsara Stack route (seed 001): POST /apsara/route/Ecs/{Action} with
// every parameter in the body (form, or a JSON object), lowercase
// `regionId`, an optional `version` (2016-01-01 in the documents; any
// value is accepted), signed like any RPC request. It reaches the ECS
// actions; replies add `RequestID` beside `RequestId`, and errors add the
// documented `resultCode`/`resultMsg`/`result` beside the Alibaba fields.

const apsaraPrefix = "/apsara/route/Ecs/"

func (s *Server) serveApsara(w http.ResponseWriter, r *http.Request) {
	reqID := ecs.NewRequestID()
	action := strings.TrimPrefix(r.URL.Path, apsaraPrefix)
	res, err := s.apsaraCall(r, action, reqID)
	if err != nil {
		s.writeApsaraError(w, r, reqID, action, err)
		return
	}
	body, err := json.Marshal(res)
	if err != nil {
		s.writeApsaraError(w, r, reqID, action, apierr.Internal(err))
		return
	}
	// Add RequestID (the route's documented key) to the ECS body.
	var m map[string]any
	json.Unmarshal(body, &m)
	m["RequestID"] = reqID
	body, _ = json.Marshal(m)
	s.log.Info("api", "request_id", reqID, "route", "apsara", "action", action, "status", 200)
	w.Header().Set("Content-Type", "application/json;charset=utf-8")
	w.WriteHeader(http.StatusOK)
	w.Write(body)
}

func (s *Server) apsaraCall(r *http.Request, action, reqID string) (any, error) {
	if r.Method != http.MethodPost {
		return nil, apierr.New("InvalidHttpMethod", 405, "The Apsara Stack route accepts POST only.")
	}
	c, err := s.authenticate(r)
	if err != nil {
		return nil, err
	}
	if strings.HasPrefix(strings.ToLower(r.Header.Get("Content-Type")), "application/json") && len(c.body) > 0 {
		// Only ACS3 covers the body (its hash is signed); an RPC
		// signature covers query and form parameters only.
		if !strings.HasPrefix(r.Header.Get("Authorization"), "ACS3-") {
			return nil, apierr.IncompleteSignature.WithMessage("A JSON body must be signed with ACS3 (x-acs-content-sha256).")
		}
		if err := mergeJSONParams(c.params, c.body); err != nil {
			return nil, err
		}
	}
	if c.params.Get("regionId") == "" && c.params.Get("RegionId") == "" {
		return nil, apierr.MissingParameter("regionId")
	}
	h, ok := s.versions[ECSVersion][action]
	if !ok || action == "" {
		return nil, apierr.InvalidActionNotFound
	}
	// An RPC signature does not cover the path: the action must be the
	// signed Action parameter too (ACS3 and ROA sign the path).
	if c.scheme == signature.SchemeRPC {
		switch signedAction := c.params.Get("Action"); {
		case signedAction == "":
			return nil, apierr.IncompleteSignature.WithMessage("With an RPC signature, the Apsara route needs the action as the signed Action parameter too.")
		case signedAction != action:
			return nil, apierr.IncompleteSignature.WithMessagef("The signed Action %q is not the route's action %q.", signedAction, action)
		}
	}
	res, err := h(r.Context(), c.caller, param.New(c.params))
	if err != nil {
		return nil, err
	}
	if rs, ok := res.(interface{ SetRequestID(string) }); ok {
		rs.SetRequestID(reqID)
	}
	return res, nil
}

// mergeJSONParams flattens a JSON object body into RPC parameters: a
// scalar becomes Name=value, an object Name.Key=value, a list of objects
// Name.N.Key=value (repeat list). A top-level list with no object or list
// element (["s-1","s-2"]) stays one parameter holding its JSON encoding,
// SnapshotIds=["s-1","s-2"], as the ECS 2014-05-26 actions served here
// take their plain lists (SnapshotIds, DiskIds, InstanceIds) as JSON-array
// strings and none reads a Name.N repeat list of scalars. A list of scalars
// nested in an object or list element keeps Name.N=value.
func mergeJSONParams(dst map[string][]string, body []byte) error {
	var obj map[string]any
	if err := json.Unmarshal(body, &obj); err != nil {
		return apierr.InvalidParameter("Body", "The JSON body must be an object.")
	}
	var flatten func(prefix string, v any)
	flatten = func(prefix string, v any) {
		switch t := v.(type) {
		case map[string]any:
			for k, x := range t {
				flatten(prefix+"."+k, x)
			}
		case []any:
			for i, x := range t {
				flatten(fmt.Sprintf("%s.%d", prefix, i+1), x)
			}
		case nil:
		case string:
			dst[prefix] = append(dst[prefix], t)
		default:
			b, _ := json.Marshal(t)
			dst[prefix] = append(dst[prefix], string(b))
		}
	}
	for k, v := range obj {
		if list, ok := v.([]any); ok && scalars(list) {
			b, _ := json.Marshal(list)
			dst[k] = append(dst[k], string(b))
			continue
		}
		flatten(k, v)
	}
	return nil
}

// scalars reports whether no element of list is an object or a list.
func scalars(list []any) bool {
	for _, x := range list {
		switch x.(type) {
		case map[string]any, []any:
			return false
		}
	}
	return true
}

// apsaraError is the route's error body: the Alibaba envelope plus the
// fields of the documented sample.
type apsaraError struct {
	errorBody
	RequestID  string
	ResultCode int    `json:"resultCode"`
	ResultMsg  string `json:"resultMsg"`
	Result     any    `json:"result"`
}

func (s *Server) writeApsaraError(w http.ResponseWriter, r *http.Request, reqID, action string, err error) {
	e := s.logError(reqID, action, err)
	body, _ := json.Marshal(apsaraError{errorBody: envelope(r, reqID, e), RequestID: reqID, ResultCode: -1, ResultMsg: e.Message})
	w.Header().Set("Content-Type", "application/json;charset=utf-8")
	w.WriteHeader(e.HTTPStatus)
	w.Write(body)
}
