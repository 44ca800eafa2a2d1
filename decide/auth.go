package decide

import (
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"net/http"
	"strings"
)

// ErrUnauthorized is what the Authorizer of Tokens returns for a request
// without a known token. The page answers any Authorizer error with 401
// Unauthorized and changes nothing.
var ErrUnauthorized = errors.New("decide: unauthorized")

// An Authorizer says who makes a request: the identity it returns is
// recorded as the one who decided (Decision.By). It returns an error, or
// an empty identity, to refuse the request. It is called for every request
// but the login form's, concurrently, under the request's context
// (r.Context()), which carries the page's time limit; a panic is recovered
// and refuses the request.
type Authorizer interface {
	Authorize(r *http.Request) (identity string, err error)
}

// AuthorizerFunc adapts a function to Authorizer: a check of the headers an
// authenticating proxy sets, of a session of the tool that mounts the page.
type AuthorizerFunc func(r *http.Request) (string, error)

// Authorize calls f(r).
func (f AuthorizerFunc) Authorize(r *http.Request) (string, error) { return f(r) }

// TokenCookie is the cookie the page's login form sets: it carries the
// token typed in, HttpOnly, SameSite=Strict, Secure over TLS.
const TokenCookie = "deploykit_token"

// MinTokenLen is the shortest token Tokens accepts, in bytes.
const MinTokenLen = 16

// Tokens returns an Authorizer that knows people by shared tokens: byToken
// maps each token to the identity it stands for ("alice", "chatops-bot").
// A request presents its token as "Authorization: Bearer <token>" (scripts)
// or in the TokenCookie the page's login form sets (browsers). Tokens are
// compared in constant time, each against every known token, so neither a
// token's length nor which token nearly matched shows in the timing.
// Tokens shorter than MinTokenLen bytes and empty identities are refused.
func Tokens(byToken map[string]string) (Authorizer, error) {
	if len(byToken) == 0 {
		return nil, fmt.Errorf("decide: Tokens: no token given")
	}
	t := &tokens{}
	for tok, who := range byToken {
		if len(tok) < MinTokenLen {
			return nil, fmt.Errorf("decide: Tokens: the token of %q is %d bytes, want at least %d", who, len(tok), MinTokenLen)
		}
		if strings.TrimSpace(who) == "" {
			return nil, fmt.Errorf("decide: Tokens: a token has an empty identity")
		}
		t.sums = append(t.sums, sha256.Sum256([]byte(tok)))
		t.who = append(t.who, who)
	}
	return t, nil
}

type tokens struct {
	sums [][32]byte
	who  []string
}

func (t *tokens) Authorize(r *http.Request) (string, error) {
	given := presented(r)
	if given == "" {
		return "", fmt.Errorf("%w: no token (Authorization: Bearer, or log in)", ErrUnauthorized)
	}
	sum := sha256.Sum256([]byte(given))
	found := -1
	for i := range t.sums {
		if subtle.ConstantTimeCompare(sum[:], t.sums[i][:]) == 1 {
			found = i
		}
	}
	if found < 0 {
		return "", fmt.Errorf("%w: unknown token", ErrUnauthorized)
	}
	return t.who[found], nil
}

// presented returns the token a request carries: the bearer token, else the
// login cookie's.
func presented(r *http.Request) string {
	if h := r.Header.Get("Authorization"); h != "" {
		scheme, tok, ok := strings.Cut(h, " ")
		if ok && strings.EqualFold(scheme, "Bearer") {
			return strings.TrimSpace(tok)
		}
		return ""
	}
	if c, err := r.Cookie(TokenCookie); err == nil {
		return c.Value
	}
	return ""
}
