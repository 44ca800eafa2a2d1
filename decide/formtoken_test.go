package decide

import (
	"testing"
	"time"
)

func TestAFormTokenChecksOnlyForWhatItWasIssued(t *testing.T) {
	f := forms{key: []byte("0123456789abcdef0123456789abcdef"), ttl: time.Minute}
	now := time.Date(2026, 12, 3, 9, 0, 0, 0, time.UTC)
	tok := f.issue("alice", "r1", 1, Approve, now)
	if _, err := f.check(tok, "alice", "r1", 1, Approve, now.Add(59*time.Second)); err != nil {
		t.Fatalf("the token as issued: %v", err)
	}
	for name, err := range map[string]error{
		"another person":  second(f.check(tok, "bob", "r1", 1, Approve, now)),
		"another release": second(f.check(tok, "alice", "r2", 1, Approve, now)),
		"another step":    second(f.check(tok, "alice", "r1", 2, Approve, now)),
		"another action":  second(f.check(tok, "alice", "r1", 1, Promote, now)),
		"another key":     second(forms{key: []byte("another key, 32 bytes long......"), ttl: time.Minute}.check(tok, "alice", "r1", 1, Approve, now)),
		// Fields are length-prefixed: moving a byte from one to the next
		// does not give the same MAC.
		"shifted fields": second(f.check(f.issue("alic", "er1", 1, Approve, now), "alice", "r1", 1, Approve, now)),
	} {
		if err != errFormToken {
			t.Errorf("%s: %v, want %v", name, err, errFormToken)
		}
	}
	if _, err := f.check(tok, "alice", "r1", 1, Approve, now.Add(time.Minute)); err != errFormExpired {
		t.Errorf("after its minute: %v, want %v", err, errFormExpired)
	}
}

func second(_ string, err error) error { return err }

// FuzzFormToken: whatever a browser sends as a form token, checking it
// neither panics nor passes, unless it is a token issued for that form.
func FuzzFormToken(f *testing.F) {
	fm := forms{key: []byte("0123456789abcdef0123456789abcdef"), ttl: time.Hour}
	now := time.Date(2026, 12, 3, 9, 0, 0, 0, time.UTC)
	f.Add(fm.issue("alice", "r1", 1, Approve, now))
	f.Add("")
	f.Add("AAAA")
	f.Fuzz(func(t *testing.T, tok string) {
		nonce, err := fm.check(tok, "alice", "r1", 1, Approve, now)
		if err == nil && nonce == "" {
			t.Errorf("token %q passed without a nonce", tok)
		}
		if err == nil && fm.issue("alice", "r1", 1, Approve, now) == tok {
			t.Errorf("a fresh token equals an old one: nonces repeat")
		}
	})
}
