package signature

import (
	"crypto/sha1"
	"encoding/base64"
	"encoding/hex"
	"slices"
	"strings"
	"testing"
)

// Test vectors of protocol.md section 6.

const v1StringToSign = "POST&%2F&AccessKeyId%3Dtestid%26Action%3DCreateSnapshot%26ClientToken%3Dtok-123e4567%26Description%3Ddesc%2520with%2520spaces%2520%2526%2520symbols%2520%252A~%252B%252F%253D%26DiskId%3Dd-bp1abc%26Format%3DJSON%26InstantAccess%3Dtrue%26RegionId%3Dcn-hangzhou%26RetentionDays%3D7%26SignatureMethod%3DHMAC-SHA1%26SignatureNonce%3D14d3177b3b1c09dd94e2116bbcf61385%26SignatureType%3D%26SignatureVersion%3D1.0%26SnapshotName%3Dsnap%2520one%26Tag.1.Key%3Denv%26Tag.1.Value%3Ddev%26Timestamp%3D2026-11-23T02%253A09%253A12Z%26Version%3D2014-05-26"

const v3CanonicalRequest = `POST
/
ClientToken=tok-123e4567&Description=desc%20with%20spaces%20%26%20symbols%20%2A~%2B%2F%3D&DiskId=d-bp1abc&InstantAccess=true&RetentionDays=7&SnapshotName=snap%20one&Tag.1.Key=env&Tag.1.Value=dev
host:127.0.0.1:18080
x-acs-action:CreateSnapshot
x-acs-content-sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855
x-acs-credentials-provider:static_ak
x-acs-date:2026-11-23T02:09:31Z
x-acs-signature-nonce:842e72b2f9a9ce1aa470b8d5d59ebdbe
x-acs-version:2014-05-26

host;x-acs-action;x-acs-content-sha256;x-acs-credentials-provider;x-acs-date;x-acs-signature-nonce;x-acs-version
e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855`

const v6StringToSign = `POST
application/json

application/json; charset=utf-8
Mon, 23 Nov 2026 02:10:08 GMT
x-acs-action:CreateInstanceSnapshot
x-acs-credentials-provider:static_ak
x-acs-signature-method:HMAC-SHA1
x-acs-signature-nonce:9530231b8074d3c61ef11dd30a30ec28
x-acs-signature-version:1.0
x-acs-version:2022-01-01
/api/v2/instances/dsw-123/snapshots`

const v7StringToSign = `POST
application/json
xnop1PNZJT+CRkjVCUWYDg==
application/json
Mon, 23 Nov 2026 02:15:42 GMT
x-acs-action:CreateInstanceSnapshot
x-acs-credentials-provider:static_ak
x-acs-signature-method:HMAC-SHA1
x-acs-signature-version:1.0
x-acs-version:2022-01-01
/api/v2/instances/dsw-123/snapshots`

// signaturesFor returns the signature(s) this package computes for s with
// secret: one for RPC and ACS3, one per alternative for ROA.
func signaturesFor(s *Signed, secret string) []string {
	switch s.Scheme {
	case SchemeRPC:
		return []string{rpcSign(secret, s.StringToSign())}
	case SchemeACS3:
		return []string{hex.EncodeToString(hmacSum(s.newHash, secret, s.StringToSign()))}
	}
	var out []string
	for _, sts := range s.roaStringsToSign() {
		out = append(out, base64.StdEncoding.EncodeToString(hmacSum(sha1.New, secret, sts)))
	}
	return out
}

func TestVectors(t *testing.T) {
	tests := []struct {
		file     string
		sig      string // signature as given in protocol.md 6
		sts      string // exact StringToSign, if given
		contains string // a substring of StringToSign, if given
	}{
		{"rpc1_go_legacy_ecs_CreateSnapshot.txt", "9rJ+v6BgUY9RhNqArV4vx122aAw=", v1StringToSign, ""},
		{"rpc1_node_popcore_CreateSnapshot_POST.txt", "tiRhrqmpU9ISpbOdl8PY4qooILI=", "", "SignatureNonce%3D7dc6d069115e75282800927faa595026%26SignatureVersion"},
		{"rpc1_go_tea_ecs_CreateSnapshot_sigv2.txt", "bW2YornxmquRya1dgCXB+bL34BQ=", "", "Format%3Djson"},
		{"rpc1_node_popcore_CreateSnapshot_GET.txt", "fGtF7Uko4HOSFXpYx6wpK23aWmE=", "", "GET&%2F&AccessKeyId%3D"},
		{"rpc1_go_legacy_ecs_CreateSnapshot_unicode.txt", "kuXJZCmR68wbz1UI2Nv2AtlVYp4=", "", "SnapshotName%3D%25E5%25BF%25AB%25E7%2585%25A7%2520%2528v1%2529%2521%2527%252A~"},
		{"rpc1_go_callapi_CreateSnapshot_bodyparams_sigv2.txt", "dX2+EsITwHFj+wJZT082WyaImBs=", "", "SnapshotName%3Dsnap%2520in%2520body"},
		{"rpc1_go_legacy_ecs_CreateSnapshot_STS.txt", "LFoXG3MekBYHNRP6TNmg4Wt5eyA=", "", "SecurityToken%3D"},
		{"acs3_go_tea_ecs_CreateSnapshot.txt", "3f9afaf1ff862d4718c6a8dd2c247087e6a544dda4c279f6f929c0b0e0f1fa1d",
			"ACS3-HMAC-SHA256\n6b2c1c547183fdf4c92f5a4ab63ee13569bfe7bec2600bf24d6d985253d646bb", ""},
		{"acs3_node_tea_ecs_CreateSnapshot.txt", "2a4adf4c91d3b1deadd45449b56a70a299578add77022149e1eaa84f5445d7ac",
			"ACS3-HMAC-SHA256\n23c8c0cd41cd36046fe2f48e25fe29323d6cb932c0f827e28eea3ba0766ca80e", ""},
		{"acs3_go_callapi_dsw_CreateInstanceSnapshot.txt", "e005483995af0d8ef4b0c5dde376883eca2b52261d99e583399d392e562425e1",
			"ACS3-HMAC-SHA256\nb6d5cad0f7aed5eee0d7891ff6d508f7c26ba29430a34eec9fd4fc7643a933f1", ""},
		{"acs3_node_callapi_dsw_CreateInstanceSnapshot.txt", "f18ae7ea2474268abe28e5194607b3aea82c1cbd0b4dabb8939bdfeb3f54d504", "", ""},
		{"acs3_go_callapi_dsw_CreateInstanceSnapshot_oddpath.txt", "bb2f186d834158214b31b56c48532e91a960711233f05a009453b2823c8ada19", "", ""},
		{"acs3_go_callapi_dsw_ListInstanceSnapshot_GET.txt", "cbfe0e21de7b4f5c675a390567f8361616d90d50b3f20032425f181b66055f13", "", ""},
		{"acs3_go_callapi_CreateSnapshot_bodyparams.txt", "f73ec7430aa632585edee68554fe1dd8c40250f73f5824869d012273368e00d4", "", ""},
		{"acs3_go_tea_ecs_CreateSnapshot_STS.txt", "e81b9c62b9db97842936d632188b97260f7a0111a9a403a1a35e3957781e1750", "", ""},
		{"acs3sm3_go_tea_ecs_CreateSnapshot.txt", "48683f381d323ec3aa116127f310edd033e683b4cc074e6c13efca70d647c81f",
			"ACS3-HMAC-SM3\ncca465ede121e325b981a12e28e1100bb5bbe159c5da3a1c336186ddad5bebd0", ""},
		{"acs3sm3_node_tea_ecs_CreateSnapshot.txt", "e247d75392fb015f420d363455fef459bc19a7586ba7055fbefacc0e7b8212d2", "", ""},
		{"roa1_go_callapi_dsw_CreateInstanceSnapshot_sigv2.txt", "o2yKclyfrTNsdMurGnj5OUrJOYI=", v6StringToSign, ""},
		{"roa1_go_callapi_dsw_ListInstanceSnapshot_GET_sigv2.txt", "VYjZQTfHdeNeGBJxVK0W6KgJWNg=", "",
			"\n\n\n" + "Mon, 23 Nov 2026"},
		{"roa1_node_callapi_dsw_CreateInstanceSnapshot_sigv2.txt", "OPI9BSwNfDIWFXh7d+H+Y/KriK4=", "", ""},
		{"roa1_go_legacy_common_dsw_CreateInstanceSnapshot.txt", "oMgrV302+B+6P338xzmCrFZP5+k=", v7StringToSign, ""},
		{"roa1_go_legacy_common_dsw_CreateInstanceSnapshot_oddpath.txt", "2cSWtrFt89hiF8kB3nwyWJDcsZA=", "", ""},
		{"roa1_go_callapi_dsw_CreateInstanceSnapshot_sigv2_oddpath.txt", "EQzW4exBYUNwc1Cq6uHxZaK5NC8=", "",
			"\n/api/v2/instances/dsw%201%2A~%C3%A9/snapshots"},
	}
	caps := make(map[string]*Request)
	for _, c := range loadCaptures(t) {
		caps[c.name] = c.req
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			req := caps[tt.file]
			if req == nil {
				t.Fatal("capture not loaded")
			}
			s, err := Parse(req)
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			sts := s.StringToSign()
			if tt.sts != "" && sts != tt.sts {
				t.Errorf("StringToSign =\n%s\nwant\n%s", sts, tt.sts)
			}
			if !strings.Contains(sts, tt.contains) {
				t.Errorf("StringToSign =\n%s\nwant it to contain %q", sts, tt.contains)
			}
			if s.signature != tt.sig {
				t.Errorf("signature sent = %q, spec says %q", s.signature, tt.sig)
			}
			if got := signaturesFor(s, testSecret); !slices.Contains(got, tt.sig) {
				t.Errorf("computed signatures %q, want one of them %q", got, tt.sig)
			}
		})
	}
}

func TestV3CanonicalRequest(t *testing.T) {
	s := parseCaptureFile(t, "acs3_go_tea_ecs_CreateSnapshot.txt")
	if got := s.acs3CanonicalRequest(); got != v3CanonicalRequest {
		t.Errorf("CanonicalRequest =\n%s\nwant\n%s", got, v3CanonicalRequest)
	}
}

func TestV4BodyParams(t *testing.T) {
	s := parseCaptureFile(t, "acs3_go_callapi_CreateSnapshot_bodyparams.txt")
	if got, want := s.acs3PayloadHash(), "d4113fcfe1343ffa6d2948b3d86cef154ec9f539fe4e9d20e558af8dad107190"; got != want {
		t.Errorf("payload hash = %s, want %s", got, want)
	}
	if got := acs3CanonicalQuery(s.query); got != "ClientToken=tok-body-1" {
		t.Errorf("canonical query = %q, want only ClientToken (form body excluded)", got)
	}
}

func TestROAOddPathAlternatives(t *testing.T) {
	// Legacy signs the decoded path: the second alternative must be it.
	s := parseCaptureFile(t, "roa1_go_legacy_common_dsw_CreateInstanceSnapshot_oddpath.txt")
	alts := s.roaStringsToSign()
	if len(alts) != 2 {
		t.Fatalf("got %d alternatives, want 2 (encoded, decoded path)", len(alts))
	}
	if !strings.HasSuffix(alts[0], "\n/api/v2/instances/dsw%201%2A~%C3%A9/snapshots") ||
		!strings.HasSuffix(alts[1], "\n/api/v2/instances/dsw 1*~é/snapshots") {
		t.Errorf("alternatives end in\n%q\n%q", alts[0][strings.LastIndex(alts[0], "\n"):], alts[1][strings.LastIndex(alts[1], "\n"):])
	}
	if got := signaturesFor(s, testSecret)[1]; got != "2cSWtrFt89hiF8kB3nwyWJDcsZA=" {
		t.Errorf("decoded-path signature = %s", got)
	}
	// The GET vector's resource line carries the sorted, raw query.
	g := parseCaptureFile(t, "roa1_go_callapi_dsw_ListInstanceSnapshot_GET_sigv2.txt")
	if want := "\n/api/v2/instances/dsw-123/snapshots?Order=DESC&PageNumber=1&PageSize=10"; !strings.HasSuffix(g.StringToSign(), want) {
		t.Errorf("StringToSign =\n%s\nwant suffix %q", g.StringToSign(), want)
	}
}

// parseCaptureFile loads and parses one capture.
func parseCaptureFile(t *testing.T, name string) *Signed {
	t.Helper()
	data, err := readCapture(name)
	if err != nil {
		t.Fatal(err)
	}
	req, err := parseCapture(data)
	if err != nil {
		t.Fatal(err)
	}
	s, err := Parse(req)
	if err != nil {
		t.Fatal(err)
	}
	return s
}
