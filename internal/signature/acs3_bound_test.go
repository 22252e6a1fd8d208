package signature

import (
	"errors"
	"net/http"
	"strings"
	"testing"
)

// TestSignedHeadersBounded: SignedHeaders names at most maxSignedHeaders
// headers, so that a forged request (a known AccessKeyId is enough to
// reach Verify) cannot make the server compare thousands of names with
// thousands of headers; the official clients sign 7 to 9.
func TestSignedHeadersBounded(t *testing.T) {
	parse := func(n int) error {
		h := http.Header{}
		h.Set("Authorization", "ACS3-HMAC-SHA256 Credential=AK1,SignedHeaders="+strings.TrimSuffix(strings.Repeat("z;", n), ";")+",Signature=00")
		_, err := Parse(&Request{Method: "POST", RawPath: "/", Host: "h", Header: h})
		return err
	}
	if err := parse(maxSignedHeaders); err != nil {
		t.Errorf("%d names: %v", maxSignedHeaders, err)
	}
	if err := parse(maxSignedHeaders + 1); !errors.Is(err, ErrMalformed) {
		t.Errorf("%d names: %v, want ErrMalformed", maxSignedHeaders+1, err)
	}
}
