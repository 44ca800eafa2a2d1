package hook_test

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"time"
)

// canaryWebhookPayload is Flagger's v1beta1.CanaryWebhookPayload field for
// field (fluxcd/flagger pkg/apis/flagger/v1beta1/canary.go), the shape of
// testdata/flagger-payload.json.
type canaryWebhookPayload struct {
	Name      string            `json:"name"`
	Namespace string            `json:"namespace"`
	Phase     string            `json:"phase"`
	Checksum  string            `json:"checksum"`
	Metadata  map[string]string `json:"metadata,omitempty"`
}

// decodeFlagger decodes b as Flagger's payload, refusing any field Flagger
// does not have.
func decodeFlagger(b []byte) (canaryWebhookPayload, error) {
	var p canaryWebhookPayload
	d := json.NewDecoder(bytes.NewReader(b))
	d.DisallowUnknownFields()
	err := d.Decode(&p)
	return p, err
}

// call is one request a loadtester received.
type call struct {
	Path    string
	At      time.Time
	Payload canaryWebhookPayload
}

// loadtester behaves like flagger-loadtester's HTTP API
// (fluxcd/flagger pkg/loadtester/server.go): it decodes Flagger's payload
// unchanged (400 when it cannot) and answers
//
//	POST /                 runs metadata "cmd": 200, or Status(n) for the n-th call
//	POST /gate/check       200 when the gate of name.namespace is open, else 403
//	POST /gate/approve     200;  /gate/halt 403
//	POST /rollback/check   200 when a rollback of name.namespace was asked, else 403
//
// Tests open gates and ask rollbacks with Open and AskRollback, as a person
// does with curl -d '{"name":…,"namespace":…}' /gate/open.
type loadtester struct {
	mu        sync.Mutex
	calls     []call
	gates     map[string]bool
	rollbacks map[string]bool
	// Status, when set, answers the n-th call (from 1) of path "/".
	Status func(n int) int
}

func (l *loadtester) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	b, _ := io.ReadAll(r.Body)
	p, err := decodeFlagger(b)
	if r.Method != http.MethodPost || r.Header.Get("Content-Type") != "application/json" || err != nil {
		http.Error(w, "bad request: "+strings.TrimSpace(string(b)), http.StatusBadRequest)
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.calls = append(l.calls, call{Path: r.URL.Path, At: time.Now(), Payload: p})
	key := p.Name + "." + p.Namespace
	switch r.URL.Path {
	case "/":
		if p.Metadata["cmd"] == "" {
			http.Error(w, "cmd not found", http.StatusBadRequest)
			return
		}
		status := http.StatusOK
		if l.Status != nil {
			status = l.Status(l.countLocked("/"))
		}
		w.WriteHeader(status)
		if status == http.StatusOK {
			io.WriteString(w, "Task started")
		} else {
			io.WriteString(w, "command "+p.Metadata["cmd"]+" failed: exit status 1")
		}
	case "/gate/check":
		if l.gates[key] {
			io.WriteString(w, "Approved")
			return
		}
		http.Error(w, "Forbidden", http.StatusForbidden)
	case "/gate/approve":
		io.WriteString(w, "Approved")
	case "/gate/halt":
		http.Error(w, "Forbidden", http.StatusForbidden)
	case "/rollback/check":
		if l.rollbacks[key] {
			io.WriteString(w, "Approved")
			return
		}
		http.Error(w, "Forbidden", http.StatusForbidden)
	case "/event", "/post":
		io.WriteString(w, "ok")
	default:
		http.NotFound(w, r)
	}
}

func (l *loadtester) countLocked(path string) int {
	n := 0
	for _, c := range l.calls {
		if c.Path == path {
			n++
		}
	}
	return n
}

// Open opens the gate of name.namespace, as POST /gate/open does.
func (l *loadtester) Open(key string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.gates == nil {
		l.gates = map[string]bool{}
	}
	l.gates[key] = true
}

// AskRollback opens the rollback of name.namespace, as POST /rollback/open.
func (l *loadtester) AskRollback(key string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.rollbacks == nil {
		l.rollbacks = map[string]bool{}
	}
	l.rollbacks[key] = true
}

// Calls returns the calls to path.
func (l *loadtester) Calls(path string) []call {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []call
	for _, c := range l.calls {
		if c.Path == path {
			out = append(out, c)
		}
	}
	return out
}

// Client serves requests with l in memory through httptest's recorder, so
// that the hooks run inside a synctest bubble, where real sockets do not
// block durably.
func (l *loadtester) Client() *http.Client {
	return &http.Client{Transport: roundTripper(func(r *http.Request) (*http.Response, error) {
		rec := httptest.NewRecorder()
		l.ServeHTTP(rec, r)
		if err := r.Context().Err(); err != nil {
			return nil, err
		}
		return rec.Result(), nil
	})}
}

type roundTripper func(*http.Request) (*http.Response, error)

func (f roundTripper) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// since returns the times of calls as offsets from start.
func since(start time.Time, calls []call) []time.Duration {
	var out []time.Duration
	for _, c := range calls {
		out = append(out, c.At.Sub(start))
	}
	return out
}
