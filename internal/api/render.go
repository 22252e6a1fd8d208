package api

import (
	"encoding/json"
	"encoding/xml"
	"net/http"
	"net/url"
	"strings"

	"github.com/snapstack/snapstack/internal/apierr"
)

// writeSuccess renders a 200 reply: XML when the client asked with
// Format=XML (only the legacy Go SDK does), JSON otherwise.
func writeSuccess(w http.ResponseWriter, action, format string, res any) error {
	if strings.EqualFold(format, "xml") {
		body, err := xml.Marshal(struct {
			XMLName xml.Name
			V       any
		}{XMLName: xml.Name{Local: action + "Response"}, V: res})
		if err != nil {
			return apierr.Internal(err)
		}
		body = unwrapV(body)
		w.Header().Set("Content-Type", "text/xml;charset=utf-8")
		w.WriteHeader(http.StatusOK)
		w.Write([]byte(xml.Header))
		w.Write(body)
		return nil
	}
	body, err := json.Marshal(res)
	if err != nil {
		return apierr.Internal(err)
	}
	w.Header().Set("Content-Type", "application/json;charset=utf-8")
	w.WriteHeader(http.StatusOK)
	w.Write(body)
	return nil
}

// unwrapV removes the <V>...</V> element the wrapper struct adds.
func unwrapV(b []byte) []byte {
	s := string(b)
	i := strings.Index(s, "<V>")
	j := strings.LastIndex(s, "</V>")
	if i < 0 || j < i {
		return b
	}
	return []byte(s[:i] + s[i+3:j] + s[j+4:])
}

// errorBody is the Alibaba Cloud error envelope. All fields are strings:
// the legacy Go SDK type-asserts them and panics otherwise.
type errorBody struct {
	RequestId string
	HostId    string
	Code      string
	Message   string
	Recommend string
}

// writeError renders err as the JSON error envelope with its HTTP status,
// always JSON (every SDK decodes errors as JSON). An error that is not an
// *apierr.Error is an InternalError; its cause is logged, never sent.
func (s *Server) writeError(w http.ResponseWriter, r *http.Request, reqID, action string, err error) {
	e := s.logError(reqID, action, err)
	body, _ := json.Marshal(envelope(r, reqID, e))
	w.Header().Set("Content-Type", "application/json;charset=utf-8")
	w.WriteHeader(e.HTTPStatus)
	w.Write(body)
}

// logError logs an error once and returns what the client may see.
func (s *Server) logError(reqID, action string, err error) *apierr.Error {
	e := apierr.As(err)
	if e == nil {
		e = apierr.Internal(err)
	}
	if e.HTTPStatus >= 500 {
		s.log.Error("api", "request_id", reqID, "action", action, "code", e.Code, "status", e.HTTPStatus, "cause", e.Cause())
		if e.Code == apierr.InternalError.Code {
			e = apierr.InternalError // never a cause or custom text
		}
	} else {
		s.log.Info("api", "request_id", reqID, "action", action, "code", e.Code, "status", e.HTTPStatus)
	}
	return e
}

// envelope is the Alibaba error body of e.
func envelope(r *http.Request, reqID string, e *apierr.Error) errorBody {
	return errorBody{
		RequestId: reqID,
		HostId:    r.Host,
		Code:      e.Code,
		Message:   e.Message,
		Recommend: "https://api.aliyun.com/troubleshoot?q=" + url.QueryEscape(e.Code) + "&requestId=" + reqID,
	}
}
