package notify

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"net/textproto"
	"strconv"
	"strings"
	"time"
)

// Scheme is how a [Webhook] signs its deliveries.
type Scheme int

// Schemes.
const (
	// StandardWebhooks signs as the Standard Webhooks specification does:
	// StandardIDHeader carries the delivery id, StandardTimestampHeader the
	// time in Unix seconds, and StandardSignatureHeader "v1," and the
	// base64 HMAC-SHA256 of id "." timestamp "." body.
	StandardWebhooks Scheme = iota
	// DeployHeaders is this package's own scheme: DeliveryHeader carries
	// the delivery id, TimestampHeader the time in Unix seconds, and
	// SignatureHeader "sha256=" and the hex HMAC-SHA256 of id "." timestamp
	// "." body.
	DeployHeaders
)

// Headers of a Webhook delivery signed with DeployHeaders.
const (
	// SignatureHeader carries "sha256=" and the hex HMAC-SHA256, under the
	// shared secret, of the delivery id, a dot, the timestamp, a dot, and
	// the body.
	SignatureHeader = "X-Deploy-Signature"
	// TimestampHeader carries the time of the delivery attempt in Unix seconds.
	TimestampHeader = "X-Deploy-Timestamp"
	// DeliveryHeader identifies the event: it is the same on every retry of
	// one event, so a receiver can drop duplicates. It is signed.
	DeliveryHeader = "X-Deploy-Delivery"
)

// EventHeader carries the event's kind ("started", "finished"…), in both
// schemes. It is not signed: the body holds the kind too.
const EventHeader = "X-Deploy-Event"

// Headers of a Webhook delivery signed with StandardWebhooks.
const (
	StandardIDHeader        = "Webhook-Id"
	StandardTimestampHeader = "Webhook-Timestamp"
	StandardSignatureHeader = "Webhook-Signature"
)

// MaxSkew is how far the timestamp of a delivery may be from the receiver's
// clock for VerifySignature to accept it.
const MaxSkew = 5 * time.Minute

// Errors of signing and verifying.
var (
	// ErrSignature is returned, wrapped, by VerifySignature when a delivery
	// is not signed, is signed with another secret or for another id or
	// body, or is too old or too far in the future.
	ErrSignature = errors.New("notify: bad signature")
	// ErrEmptySecret is returned, wrapped, by Sign, VerifySignature and
	// Webhook.Validate for an empty secret: an HMAC under an empty key is
	// one anybody can make.
	ErrEmptySecret = errors.New("notify: the secret is empty")
)

// standardPrefix marks a Standard Webhooks secret: the key is the base64
// that follows.
const standardPrefix = "whsec_"

// NewSecret returns a new random secret in the Standard Webhooks form
// "whsec_<base64 of 32 bytes>", usable with both schemes.
func NewSecret() string {
	b := make([]byte, 32)
	rand.Read(b)
	return standardPrefix + base64.StdEncoding.EncodeToString(b)
}

// key returns the HMAC key of secret in scheme.
func key(s Scheme, secret string) ([]byte, error) {
	if secret == "" {
		return nil, ErrEmptySecret
	}
	if rest, ok := strings.CutPrefix(secret, standardPrefix); ok && s == StandardWebhooks {
		k, err := base64.StdEncoding.DecodeString(rest)
		if err != nil {
			return nil, fmt.Errorf("a %s secret must be base64 after the prefix", standardPrefix)
		}
		if len(k) == 0 {
			return nil, ErrEmptySecret
		}
		return k, nil
	}
	return []byte(secret), nil
}

func mac(k []byte, id, ts string, body []byte) []byte {
	m := hmac.New(sha256.New, k)
	m.Write([]byte(id))
	m.Write([]byte("."))
	m.Write([]byte(ts))
	m.Write([]byte("."))
	m.Write(body)
	return m.Sum(nil)
}

// Sign returns the value of the signature header of a delivery with id and
// body sent at t, in scheme s: "v1,<base64>" for StandardWebhooks,
// "sha256=<hex>" for DeployHeaders. An empty secret is refused with
// ErrEmptySecret.
func Sign(s Scheme, secret, id string, t time.Time, body []byte) (string, error) {
	k, err := key(s, secret)
	if err != nil {
		return "", err
	}
	sum := mac(k, id, strconv.FormatInt(t.Unix(), 10), body)
	if s == DeployHeaders {
		return "sha256=" + hex.EncodeToString(sum), nil
	}
	return "v1," + base64.StdEncoding.EncodeToString(sum), nil
}

// VerifySignature checks a Webhook delivery for a receiver, in either
// scheme (told by the headers present): that the signature is one under
// secret of the delivery id, the timestamp and body, and that the
// timestamp is within MaxSkew of now. Pass the request body exactly as
// received. A Standard Webhooks signature header may list several
// space-separated signatures (during a key rotation); one matching is
// enough. It returns nil or an error wrapping ErrSignature (and
// ErrEmptySecret for an empty secret).
func VerifySignature(secret string, body []byte, h http.Header) error {
	scheme, idH, tsH, sigH := StandardWebhooks, StandardIDHeader, StandardTimestampHeader, StandardSignatureHeader
	if h.Get(StandardSignatureHeader) == "" && h.Get(SignatureHeader) != "" {
		scheme, idH, tsH, sigH = DeployHeaders, DeliveryHeader, TimestampHeader, SignatureHeader
	}
	k, err := key(scheme, secret)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrSignature, err)
	}
	sig, id, ts := h.Get(sigH), h.Get(idH), h.Get(tsH)
	if sig == "" {
		return fmt.Errorf("%w: no %s or %s header", ErrSignature, StandardSignatureHeader, SignatureHeader)
	}
	if id == "" {
		return fmt.Errorf("%w: no %s header", ErrSignature, idH)
	}
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil {
		return fmt.Errorf("%w: %s %q is not Unix seconds", ErrSignature, tsH, clip(ts, 40))
	}
	want := mac(k, id, ts, body)
	if !signatureMatches(scheme, sig, want) {
		if scheme == DeployHeaders && !strings.HasPrefix(sig, "sha256=") {
			return fmt.Errorf("%w: %s does not start with sha256=", ErrSignature, sigH)
		}
		return fmt.Errorf("%w: signature mismatch", ErrSignature)
	}
	if skew := time.Since(time.Unix(sec, 0)); skew > MaxSkew || skew < -MaxSkew {
		return fmt.Errorf("%w: timestamp %s is %v away from now (max %v)", ErrSignature, ts, skew.Round(time.Second), MaxSkew)
	}
	return nil
}

func signatureMatches(s Scheme, header string, want []byte) bool {
	if s == DeployHeaders {
		hexSig, ok := strings.CutPrefix(header, "sha256=")
		got, err := hex.DecodeString(hexSig)
		return ok && err == nil && hmac.Equal(got, want)
	}
	for _, part := range strings.Fields(header) {
		version, b64, ok := strings.Cut(part, ",")
		if !ok || version != "v1" {
			continue
		}
		if got, err := base64.StdEncoding.DecodeString(b64); err == nil && hmac.Equal(got, want) {
			return true
		}
	}
	return false
}

// reservedHeader reports whether a canonical header name is one a
// signature scheme sets.
func reservedHeader(ck string) bool {
	switch ck {
	case SignatureHeader, TimestampHeader, DeliveryHeader,
		textproto.CanonicalMIMEHeaderKey(StandardIDHeader), textproto.CanonicalMIMEHeaderKey(StandardTimestampHeader), textproto.CanonicalMIMEHeaderKey(StandardSignatureHeader):
		return true
	}
	return false
}
