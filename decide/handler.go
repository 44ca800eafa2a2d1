package decide

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/deploykit/deploy"
	"github.com/deploykit/deploy/state"
)

// Decider carries out the decisions taken on the page. *deploy.Runner
// implements it. Each call is made under a context that ends after the
// page's time limit (WithTimeout); a call that panics or outlives it is
// answered as failed, and the page waits no longer.
type Decider interface {
	Approve(ctx context.Context, id string, step int, d deploy.Decision) error
	Promote(ctx context.Context, id string, full bool, d deploy.Decision) error
	Abort(ctx context.Context, id string, d deploy.Decision) error
	Retry(ctx context.Context, id string, d deploy.Decision) error
	Skip(ctx context.Context, id string, step int, d deploy.Decision) error
	Rollback(ctx context.Context, id, reason string) (*deploy.Report, error)
	Report(ctx context.Context, id string) (*deploy.Report, error)
}

// Store is where the page reads releases: state.Memory, state.File and
// state/postgres's store implement it.
type Store interface {
	Load(ctx context.Context, id string) (*state.Record, error)
	state.Lister
}

var (
	_ Decider = (*deploy.Runner)(nil)
	_ Store   = (*state.Memory)(nil)
	_ Store   = (*state.File)(nil)
)

// Defaults of the options.
const (
	DefaultTimeout         = 10 * time.Second
	DefaultFormTTL         = time.Hour
	DefaultRollbackTimeout = time.Hour
	// MaxTimeline is how many timeline entries, the newest, a release's
	// page shows; the Markdown report has them all.
	MaxTimeline = 200
	// PageSize is how many releases the list shows at once.
	PageSize = 50
)

// Handler is the decision page: an http.Handler to mount under a prefix of
// the deploy tool's server, with http.StripPrefix. It is safe for
// concurrent use. See the package documentation for its routes.
type Handler struct {
	decider Decider
	store   Store
	auth    Authorizer
	forms   forms
	replays replays
	cop     *http.CrossOriginProtection
	mux     http.Handler // the routes behind the cross-origin protection
	timeout time.Duration
	rbwait  time.Duration
	log     *slog.Logger
	now     func() time.Time
}

// Option configures a Handler.
type Option func(*Handler) error

// WithKey sets the key that signs the page's forms. Replicas of the deploy
// tool behind one load balancer must share it; by default each Handler
// draws its own at random, and its forms are good only on it.
func WithKey(key []byte) Option {
	return func(h *Handler) error {
		if len(key) < 32 {
			return fmt.Errorf("decide: WithKey: key is %d bytes, want at least 32", len(key))
		}
		h.forms.key = append([]byte(nil), key...)
		return nil
	}
}

// WithTimeout bounds every read of the store and every decision call
// (DefaultTimeout). A rollback goes on past it: the page then answers that
// it is under way.
func WithTimeout(d time.Duration) Option {
	return func(h *Handler) error {
		if d <= 0 {
			return fmt.Errorf("decide: WithTimeout: %v is not positive", d)
		}
		h.timeout = d
		return nil
	}
}

// WithFormTTL sets how long a decision form stays good after it is shown
// (DefaultFormTTL).
func WithFormTTL(d time.Duration) Option {
	return func(h *Handler) error {
		if d <= 0 {
			return fmt.Errorf("decide: WithFormTTL: %v is not positive", d)
		}
		h.forms.ttl = d
		return nil
	}
}

// WithRollbackTimeout bounds a rollback started from the page, which goes on
// after the request is answered (DefaultRollbackTimeout).
func WithRollbackTimeout(d time.Duration) Option {
	return func(h *Handler) error {
		if d <= 0 {
			return fmt.Errorf("decide: WithRollbackTimeout: %v is not positive", d)
		}
		h.rbwait = d
		return nil
	}
}

// WithTrustedOrigins lets pages served from these origins
// ("https://ops.example.com") post decisions, for a page embedded in
// another tool; by default only same-origin posts are accepted.
func WithTrustedOrigins(origins ...string) Option {
	return func(h *Handler) error {
		for _, o := range origins {
			if err := h.cop.AddTrustedOrigin(o); err != nil {
				return fmt.Errorf("decide: WithTrustedOrigins: %w", err)
			}
		}
		return nil
	}
}

// WithLogger logs every decision and every refusal (discarded by default).
func WithLogger(l *slog.Logger) Option {
	return func(h *Handler) error {
		if l != nil {
			h.log = l
		}
		return nil
	}
}

// New returns the decision page for the releases in store, carrying out
// decisions with d (a *deploy.Runner sharing that store) for the people
// auth lets in (Tokens, or an AuthorizerFunc of the tool's own).
func New(d Decider, store Store, auth Authorizer, opts ...Option) (*Handler, error) {
	switch {
	case d == nil:
		return nil, errors.New("decide: New: the Decider is nil")
	case store == nil:
		return nil, errors.New("decide: New: the Store is nil")
	case auth == nil:
		return nil, errors.New("decide: New: the Authorizer is nil")
	}
	h := &Handler{
		decider: d, store: store, auth: auth,
		forms:   forms{ttl: DefaultFormTTL},
		replays: replays{max: 4096},
		cop:     http.NewCrossOriginProtection(),
		timeout: DefaultTimeout,
		rbwait:  DefaultRollbackTimeout,
		log:     slog.New(slog.DiscardHandler),
		now:     time.Now,
	}
	for _, o := range opts {
		if err := o(h); err != nil {
			return nil, err
		}
	}
	if h.forms.key == nil {
		h.forms.key = make([]byte, 32)
		rand.Read(h.forms.key)
	}
	h.cop.SetDenyHandler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h.refuse(w, r, http.StatusForbidden, "cross-origin request refused: decisions are taken from this page only")
	}))
	m := http.NewServeMux()
	m.HandleFunc("GET /{$}", h.authed(h.list))
	m.HandleFunc("GET /releases/{id}", h.authed(h.release))
	m.HandleFunc("GET /releases/{id}/report.md", h.authed(h.report))
	m.HandleFunc("POST /releases/{id}/{action}", h.authed(h.decideForm))
	m.HandleFunc("GET /login", h.loginForm)
	m.HandleFunc("POST /login", h.login)
	m.HandleFunc("POST /logout", h.logout)
	m.HandleFunc("GET /api/releases", h.authed(h.apiList))
	m.HandleFunc("GET /api/releases/{id}", h.authed(h.apiRelease))
	m.HandleFunc("POST /api/releases/{id}/{action}", h.authed(h.apiDecide))
	h.mux = h.cop.Handler(m)
	return h, nil
}

// ServeHTTP implements http.Handler.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	defer func() {
		if p := recover(); p != nil {
			if p == http.ErrAbortHandler {
				panic(p)
			}
			h.log.Error("decide: panic serving the page", "path", r.URL.Path, "panic", fmt.Sprint(p))
			http.Error(w, "internal error", http.StatusInternalServerError)
		}
	}()
	hd := w.Header()
	hd.Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
	hd.Set("X-Content-Type-Options", "nosniff")
	hd.Set("Referrer-Policy", "same-origin")
	hd.Set("Cache-Control", "no-store")
	ctx, cancel := context.WithTimeout(r.Context(), h.timeout)
	defer cancel()
	h.mux.ServeHTTP(w, r.WithContext(ctx))
}

type whoKey struct{}

// authed lets through the requests the Authorizer names someone for.
func (h *Handler) authed(next http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		var who string
		err := bounded(r.Context(), func(context.Context) error {
			var err error
			who, err = h.auth.Authorize(r)
			return err
		})
		if err == nil && strings.TrimSpace(who) == "" {
			err = errors.New("the authorizer named nobody")
		}
		if err != nil {
			h.log.Info("decide: refused", "path", r.URL.Path, "method", r.Method, "err", err)
			if isAPI(r) {
				w.Header().Set("WWW-Authenticate", `Bearer realm="deploykit"`)
			}
			h.refuse(w, r, http.StatusUnauthorized, "not authorized: "+err.Error())
			return
		}
		next(w, r.WithContext(context.WithValue(r.Context(), whoKey{}, who)))
	}
}

func identity(r *http.Request) string { s, _ := r.Context().Value(whoKey{}).(string); return s }

func isAPI(r *http.Request) bool { return strings.HasPrefix(r.URL.Path, "/api/") }

// base is the prefix the page is mounted under ("/deploys"), found by
// comparing the request's URI with the path the Handler sees.
func base(r *http.Request) string {
	u, err := url.ParseRequestURI(r.RequestURI)
	if err != nil || r.RequestURI == "" {
		return ""
	}
	return strings.TrimSuffix(strings.TrimSuffix(u.Path, r.URL.Path), "/")
}

// refuse answers a refusal in the request's language: JSON for the API,
// a page for people.
func (h *Handler) refuse(w http.ResponseWriter, r *http.Request, code int, msg string) {
	if isAPI(r) {
		writeJSON(w, code, map[string]any{"error": msg})
		return
	}
	h.render(w, r, code, "message", pageData{Title: http.StatusText(code), Message: msg, Base: base(r), LoggedIn: identity(r) != ""})
}

// bounded calls fn under ctx and returns its error, or an error when fn
// panics or ctx ends first (fn then goes on alone).
func bounded(ctx context.Context, fn func(context.Context) error) error {
	done := make(chan error, 1)
	go func() {
		defer func() {
			if p := recover(); p != nil {
				done <- fmt.Errorf("panic: %v", p)
			}
		}()
		done <- fn(ctx)
	}()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		return fmt.Errorf("no answer in time: %w", context.Cause(ctx))
	}
}
