package decide

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"strconv"
	"time"
)

// A form token binds one decision form to who was shown it, the release,
// the step it was at and the action: HMAC-SHA256 over them, a random nonce
// and an expiry. A form cannot be replayed for another release, step,
// action or person, nor after it expires; its nonce names it for the
// replay memory (replay.go). The page also refuses cross-origin posts
// (http.CrossOriginProtection) and sets its cookie SameSite=Strict: the
// token is the defence that does not depend on the browser.

const (
	nonceLen = 16
	macLen   = sha256.Size
	tokenLen = nonceLen + 8 + macLen
)

var (
	errFormToken   = errors.New("the form's token does not match this release, step, action and person: reload the page")
	errFormExpired = errors.New("the form has expired: reload the page")
)

type forms struct {
	key []byte
	ttl time.Duration
}

func (f forms) mac(nonce []byte, until int64, who, id string, step int, a Action) []byte {
	m := hmac.New(sha256.New, f.key)
	m.Write([]byte("deploykit-decide-v1\x00"))
	m.Write(nonce)
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], uint64(until))
	m.Write(b[:])
	for _, s := range []string{who, id, strconv.Itoa(step), string(a)} {
		// Length-prefixed, so no two field lists hash alike.
		binary.BigEndian.PutUint64(b[:], uint64(len(s)))
		m.Write(b[:])
		m.Write([]byte(s))
	}
	return m.Sum(nil)
}

// issue returns a token for the form of action a on step of release id,
// shown to who at now.
func (f forms) issue(who, id string, step int, a Action, now time.Time) string {
	buf := make([]byte, 0, tokenLen)
	nonce := make([]byte, nonceLen)
	rand.Read(nonce)
	until := now.Add(f.ttl).Unix()
	buf = append(buf, nonce...)
	buf = binary.BigEndian.AppendUint64(buf, uint64(until))
	buf = append(buf, f.mac(nonce, until, who, id, step, a)...)
	return base64.RawURLEncoding.EncodeToString(buf)
}

// check verifies tok for that form at now and returns its nonce.
func (f forms) check(tok, who, id string, step int, a Action, now time.Time) (string, error) {
	b, err := base64.RawURLEncoding.DecodeString(tok)
	if err != nil || len(b) != tokenLen {
		return "", errFormToken
	}
	nonce, rest := b[:nonceLen], b[nonceLen:]
	until := int64(binary.BigEndian.Uint64(rest[:8]))
	if !hmac.Equal(rest[8:], f.mac(nonce, until, who, id, step, a)) {
		return "", errFormToken
	}
	if !now.Before(time.Unix(until, 0)) {
		return "", errFormExpired
	}
	return base64.RawURLEncoding.EncodeToString(nonce), nil
}
