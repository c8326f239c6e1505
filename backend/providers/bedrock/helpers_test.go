package bedrock

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/protocol/eventstream"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"

	"opentracy/backend/config"
	"opentracy/backend/providers/providertest"
)

// update rewrites the *.golden files from the current output; review the diff before committing.
var update = flag.Bool("update", false, "rewrite golden files")

// The clock, id and credentials every test provider uses. The keys are AWS's documentation
// examples.
const (
	testID     = "chatcmpl-test"
	testRegion = "us-east-1"
	testAKID   = "AKIDEXAMPLE"
	testSecret = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
	testModel  = "anthropic.claude-3-5-haiku-20241022-v1:0"
)

func testNow() time.Time { return time.Date(2025, 3, 14, 15, 9, 26, 0, time.UTC) }

func testEnv(extra map[string]string) map[string]string {
	env := map[string]string{"AWS_ACCESS_KEY_ID": testAKID, "AWS_SECRET_ACCESS_KEY": testSecret, "AWS_REGION": testRegion}
	for k, v := range extra {
		env[k] = v
	}
	return env
}

// newTestProvider points a provider at base with the test credentials (plus env), clock and id.
func newTestProvider(t *testing.T, cfg config.Provider, env map[string]string) *Provider {
	t.Helper()
	if cfg.Type == "" {
		cfg.Type = Type
	}
	p, err := New(cfg, http.DefaultClient, envMap(env))
	if err != nil {
		t.Fatal(err)
	}
	p.now = testNow
	p.newID = func() string { return testID }
	return p
}

// frameSpec is one event-stream message of a testdata/*.events.json script: an event, or an
// exception when Exception is set.
type frameSpec struct {
	Event     string          `json:"event"`
	Exception string          `json:"exception"`
	Payload   json.RawMessage `json:"payload"`
}

// frames encodes a script with the SDK's encoder, so the test input has real event-stream framing
// (prelude, headers, CRCs), as ConverseStream sends it.
func frames(t *testing.T, specs []frameSpec) []byte {
	t.Helper()
	enc := eventstream.NewEncoder()
	var buf bytes.Buffer
	for _, s := range specs {
		var msg eventstream.Message
		if s.Exception != "" {
			msg.Headers.Set(":message-type", eventstream.StringValue("exception"))
			msg.Headers.Set(":exception-type", eventstream.StringValue(s.Exception))
		} else {
			msg.Headers.Set(":message-type", eventstream.StringValue("event"))
			msg.Headers.Set(":event-type", eventstream.StringValue(s.Event))
		}
		msg.Headers.Set(":content-type", eventstream.StringValue("application/json"))
		var payload bytes.Buffer
		if err := json.Compact(&payload, s.Payload); err != nil {
			t.Fatal(err)
		}
		msg.Payload = payload.Bytes()
		if err := enc.Encode(&buf, msg); err != nil {
			t.Fatal(err)
		}
	}
	return buf.Bytes()
}

// streamFixture encodes testdata/name (an events script) into event-stream bytes.
func streamFixture(t *testing.T, name string) []byte {
	t.Helper()
	var specs []frameSpec
	if err := json.Unmarshal(fixture(t, name), &specs); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return frames(t, specs)
}

// checkSigV4 checks the request's SigV4 Authorization header the way Bedrock would (see
// verifySigV4) and returns the signed header names.
func checkSigV4(t *testing.T, got providertest.Recorded, creds aws.Credentials) []string {
	t.Helper()
	signed, err := verifySigV4(got, creds)
	if err != nil {
		t.Fatal(err)
	}
	return signed
}

// verifySigV4 checks a SigV4 Authorization header: its shape, its scope, and its signature,
// recomputed with the SDK's signer over the request as received (only the headers it says it
// signed).
func verifySigV4(got providertest.Recorded, creds aws.Credentials) ([]string, error) {
	authRE := regexp.MustCompile(`^AWS4-HMAC-SHA256 Credential=([^/]+)/(\d{8})/([^/]+)/bedrock/aws4_request, SignedHeaders=([a-z0-9;-]+), Signature=([0-9a-f]{64})$`)
	auth := got.Header.Get("Authorization")
	m := authRE.FindStringSubmatch(auth)
	if m == nil {
		return nil, fmt.Errorf("authorization %q is not a SigV4 header", auth)
	}
	amzDate := got.Header.Get("X-Amz-Date")
	when, err := time.Parse("20060102T150405Z", amzDate)
	if err != nil {
		return nil, fmt.Errorf("X-Amz-Date %q: %w", amzDate, err)
	}
	if m[1] != creds.AccessKeyID || m[2] != when.Format("20060102") || m[3] != testRegion {
		return nil, fmt.Errorf("credential scope %s/%s/%s, want %s/%s/%s", m[1], m[2], m[3], creds.AccessKeyID, when.Format("20060102"), testRegion)
	}
	signed := strings.Split(m[4], ";")

	req, err := http.NewRequest(got.Method, "http://"+got.Host+got.RequestURI, bytes.NewReader(got.Body))
	if err != nil {
		return nil, err
	}
	req.Host = got.Host
	for _, h := range signed {
		if h == "host" || h == "content-length" {
			continue // from req.Host and req.ContentLength
		}
		vs := got.Header.Values(h)
		if len(vs) == 0 {
			return nil, fmt.Errorf("signed header %q was not received", h)
		}
		req.Header[http.CanonicalHeaderKey(h)] = vs
	}
	sum := sha256.Sum256(got.Body)
	if err := v4.NewSigner().SignHTTP(context.Background(), creds, req, hex.EncodeToString(sum[:]), "bedrock", testRegion, when); err != nil {
		return nil, err
	}
	if want := req.Header.Get("Authorization"); auth != want {
		return nil, fmt.Errorf("signature does not verify:\n got %s\nwant %s", auth, want)
	}
	return signed, nil
}

// Shared with the other translating adapters' tests.
func fixture(t *testing.T, name string) []byte       { return providertest.Fixture(t, name) }
func jsonDiff(t *testing.T, want, got []byte) string { return providertest.JSONDiff(t, want, got) }
func envMap(m map[string]string) config.Environment  { return providertest.Env(m) }
func readAllSmall(r io.Reader) ([]byte, error)       { return providertest.ReadAllSmall(r) }

func checkGolden(t *testing.T, name string, got []byte) {
	t.Helper()
	providertest.CheckGolden(t, name, got, *update)
}
