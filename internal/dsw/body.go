package dsw

import (
	"bytes"
	"encoding/json"
	"errors"
	"net/url"
)

// Call is one authenticated PAI-DSW request as the edge decoded it.
type Call struct {
	AccountID string
	// Host is the Host header: the endpoint the client used. An image
	// reference naming this host is served by the embedded registry.
	Host  string
	Path  map[string]string // path parameters, decoded ("InstanceId")
	Query url.Values
	Body  []byte // raw JSON body
}

// label is a {Key, Value} pair of the JSON bodies.
type label struct {
	Key   string `json:"Key"`
	Value string `json:"Value"`
}

// decode unmarshals the JSON body into v. An empty body is {}; unknown
// fields are ignored; malformed JSON or a field of the wrong type is a
// ValidationError naming the field.
func decode(body []byte, v any) error {
	if len(bytes.TrimSpace(body)) == 0 {
		return nil
	}
	err := json.Unmarshal(body, v)
	var te *json.UnmarshalTypeError
	switch {
	case err == nil:
		return nil
	case errors.As(err, &te) && te.Field != "":
		return invalid("The parameter %s must be of type %s.", te.Field, jsonType(te.Type.Kind().String()))
	}
	return invalid("The request body is not a valid JSON object.")
}

func jsonType(kind string) string {
	switch kind {
	case "bool":
		return "boolean"
	case "slice", "array":
		return "array"
	case "map", "struct":
		return "object"
	case "string":
		return "string"
	}
	return "number"
}
