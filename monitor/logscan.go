package monitor

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/deploykit/deploy/internal/redact"
)

// LogNewSignatures is the metric a [LogScan] reports: how many error
// signatures have appeared since the baseline that were not seen before it.
const LogNewSignatures = "log_new_signatures"

// DefaultErrorPattern is the regular expression that picks error lines when
// LogScan.Pattern is empty: ERROR, FATAL, PANIC or CRITICAL as a word, a Go
// "panic:", and level=error (logfmt) or "level":"error" (JSON), fatal and
// panic included.
const DefaultErrorPattern = `\b(?:ERROR|FATAL|PANIC|CRITICAL)\b|\bpanic:|\b(?:level|lvl)=(?:error|fatal|panic|ERROR|FATAL|PANIC)\b|"(?:level|lvl|severity)"\s*:\s*"(?i:error|fatal|panic|critical)"`

// maxLine caps how much of one line is kept; longer lines are cut.
const maxLine = 64 << 10

// LogScan reports error signatures that are new since the deploy: the
// checklist's "Check error logs for new errors".
//
// It reads a log, keeps the error lines (those matching Pattern), and turns
// each into a signature with [Signature], which removes what changes from one
// occurrence to the next (numbers, UUIDs, hex ids, quoted values, IP
// addresses, timestamps). Every signature read up to and during an
// observation whose Target.Phase is "baseline" is known; a signature first
// read later is new. Each observation after the baseline holds a [Check]
// (named Name) that fails listing the new signatures, and the metric
// LogNewSignatures counting them. New signatures stay new: once one has
// appeared, every later observation reports it, so a verification after the
// bake still sees it.
//
// An observation whose Target.Phase is "rollback" verifies a rollback, so
// it asks another question: are new signatures still appearing since the
// rollback finished (Target.Since)? A line is dated by the time stamp it
// starts with (RFC 3339 and similar, or Go's log format; bare, in brackets,
// or after "time=" or "ts=", quoted or not) or, for a JSON line, by its
// "time", "ts", "timestamp" or "@timestamp" member (a string, or epoch
// seconds, milliseconds, micro- or nanoseconds); a stamp without a zone is
// read in Location, or, without one, in UTC and in local time, the later
// reading winning; a reading more than a minute in the future is dropped,
// and a line with none left counts as new. Lines of new signatures dated
// before Since are the release's own and do not count. Undated lines count,
// except in the first read of a log by a LogScan that was given its state
// back (Restore) in a process that resumed the release: that read is the
// log's history, so a process that only verifies the rollback (a cron job
// calling Reconcile) judges by dated lines alone.
//
// The log is a file at Path, tailed across observations: each observation
// reads what was appended since the last one, starts again from the top when
// the file was truncated, and, when the file was rotated (renamed or
// replaced), finishes the old file and then reads the new one from its start.
// A line is read once it ends with a newline. Or the log is Reader, read up to
// io.EOF at each observation (an *os.File or a *bytes.Buffer fed between
// observations works; a pipe that blocks would block Observe).
//
// Observing a non-baseline phase before any baseline is an error, unless
// Known seeds the baseline (for instance with [LogScan.Baseline] saved before
// a restart). A LogScan is [Stateful]: a deploy.Runner saves its baseline in
// the release's record and restores it in a process that resumes the
// release, which then re-reads the file from its start.
//
// A LogScan keeps state between observations: use it through a pointer, do
// not copy it after the first Observe, and Close it when done. Its methods are
// safe for concurrent use.
type LogScan struct {
	// Name names the check; empty means "no new errors in logs".
	Name string
	// Path is the log file to tail. Exactly one of Path and Reader is set.
	Path string
	// Reader is the log to read when there is no file.
	Reader io.Reader
	// Pattern is the regular expression (RE2 syntax) that picks error lines;
	// empty means DefaultErrorPattern.
	Pattern string
	// Known are signatures known before the first observation, as returned by
	// Baseline.
	Known []string
	// MaxDetail caps how many new signatures the check's detail lists; 0
	// means 5.
	MaxDetail int
	// Critical marks the check critical: its failure rolls back at once.
	Critical bool
	// Location is the time zone of time stamps written without one, for the
	// rollback phase. Nil reads such a stamp both in UTC and in the runner's
	// local time and takes the later reading, so that an error is taken for
	// the release's past only when every plausible reading puts it there.
	Location *time.Location

	mu       sync.Mutex
	pattern  *regexp.Regexp
	baseline map[string]struct{} // nil until a baseline or Known
	fresh    map[string]*sighting
	f        *os.File
	off      int64
	mark     []byte // the last bytes read before off, to notice a copytruncate
	partial  []byte
	lines    int  // error lines read since the baseline
	reads    int  // observations that read the log
	history  bool // Restore came before any read: the first read is history
	// The rollback phase: new signatures seen since after.since.
	after struct {
		since       time.Time
		fresh       map[string]*sighting
		old, known  int // lines before since; known lines after it
		initialised bool
	}
}

type sighting struct {
	count   int
	example string
}

var (
	_ Source    = (*LogScan)(nil)
	_ io.Closer = (*LogScan)(nil)
)

// Validate reports a bad field, naming the field and the value.
func (s *LogScan) Validate() error {
	switch {
	case s.Path == "" && s.Reader == nil:
		return errors.New(`monitor: LogScan.Path "" is empty and LogScan.Reader is nil: set one`)
	case s.Path != "" && s.Reader != nil:
		return fmt.Errorf("monitor: LogScan.Path %q and LogScan.Reader are both set: set one", s.Path)
	case s.MaxDetail < 0:
		return fmt.Errorf("monitor: LogScan.MaxDetail %d is negative", s.MaxDetail)
	}
	if s.Pattern != "" {
		if _, err := regexp.Compile(s.Pattern); err != nil {
			return fmt.Errorf("monitor: LogScan.Pattern %q: %w", s.Pattern, err)
		}
	}
	return nil
}

// Observe reads the log written since the last observation and reports the
// new error signatures.
func (s *LogScan) Observe(ctx context.Context, t Target) (Observation, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.pattern == nil {
		if err := s.Validate(); err != nil {
			return Observation{}, err
		}
		p := s.Pattern
		if p == "" {
			p = DefaultErrorPattern
		}
		s.pattern = regexp.MustCompile(p)
		if len(s.Known) > 0 {
			if s.baseline == nil {
				s.baseline = make(map[string]struct{}, len(s.Known))
			}
			for _, sig := range s.Known { // with what Restore gave back
				s.baseline[sig] = struct{}{}
			}
		}
	}
	isBaseline := t.Phase == "baseline"
	if !isBaseline && s.baseline == nil {
		return Observation{}, fmt.Errorf("monitor: %s: no baseline yet: observe a Target with Phase \"baseline\" before the deploy, or set LogScan.Known", s.name())
	}
	if s.baseline == nil {
		s.baseline = make(map[string]struct{})
	}
	isRollback := t.Phase == "rollback"
	history := s.history && s.reads == 0
	if isRollback && (!s.after.initialised || !s.after.since.Equal(t.Since)) {
		s.after.since, s.after.fresh, s.after.old, s.after.known, s.after.initialised = t.Since, map[string]*sighting{}, 0, 0, true
	}
	line := func(l []byte) {
		if s.Pattern == "" && !mayBeError(l) || !s.pattern.Match(l) {
			return
		}
		sig := Signature(string(l))
		if isBaseline {
			s.baseline[sig] = struct{}{}
			return
		}
		s.lines++
		_, known := s.baseline[sig]
		if isRollback {
			switch at, ok := lineTime(l, s.Location); {
			case ok && at.Before(t.Since), !ok && history:
				// Dated before the rollback, or undated in the first read of
				// a log by a process that resumed the release: the release's
				// own past, not a sign that the rollback did not help.
				if !known {
					s.after.old++
				}
			case known:
				s.after.known++
			default:
				if f := s.after.fresh[sig]; f != nil {
					f.count++
				} else {
					s.after.fresh[sig] = &sighting{count: 1, example: strings.TrimSpace(string(l))}
				}
			}
		}
		if known {
			return
		}
		if s.fresh == nil {
			s.fresh = make(map[string]*sighting)
		}
		if f := s.fresh[sig]; f != nil {
			f.count++
			return
		}
		s.fresh[sig] = &sighting{count: 1, example: strings.TrimSpace(string(l))}
	}
	var err error
	if s.Reader != nil {
		err = s.readAll(ctx, s.Reader, line, true)
	} else {
		err = s.tail(ctx, line)
	}
	if err != nil {
		return Observation{}, fmt.Errorf("monitor: %s: %w", s.name(), err)
	}
	s.reads++

	o := Observation{At: time.Now()}
	if isBaseline {
		o.Checks = []Check{{Name: s.name(), OK: true, Critical: s.Critical,
			Detail: fmt.Sprintf("baseline: %d known error signatures", len(s.baseline))}}
		o.Set(LogNewSignatures, Value(0, 1))
		return o, nil
	}
	if isRollback {
		o.Checks = []Check{s.afterCheck()}
		o.Set(LogNewSignatures, Value(float64(len(s.after.fresh)), 1))
		return o, nil
	}
	o.Checks = []Check{s.check()}
	o.Set(LogNewSignatures, Value(float64(len(s.fresh)), 1))
	return o, nil
}

// afterCheck is the check of the rollback phase: new signatures since
// after.since.
func (s *LogScan) afterCheck() Check {
	since := s.after.since.UTC().Format(time.RFC3339)
	if len(s.after.fresh) == 0 {
		return Check{Name: s.name(), OK: true, Critical: s.Critical, Kind: KindLogs,
			Detail: fmt.Sprintf("no new error signature since %s (%s of new signatures before it, %s after it)",
				since, count(s.after.old, "line"), count(s.after.known, "known error line"))}
	}
	return Check{Name: s.name(), Critical: s.Critical, Kind: KindLogs,
		Detail: s.list(s.after.fresh, fmt.Sprintf("%s since %s:", count(len(s.after.fresh), "new error signature"), since))}
}

func count(n int, what string) string {
	if n == 1 {
		return "1 " + what
	}
	return fmt.Sprintf("%d %ss", n, what)
}

// lineTime reads the time stamp a log line starts with — RFC 3339 and
// similar ("2026-03-02 11:05:00,123"), or Go's log format ("2026/03/02
// 11:05:00.123456") — bare, in brackets, or after "time=" or "ts=" (quoted
// or not); or, for a JSON line, its "time", "ts", "timestamp" or
// "@timestamp" member wherever it is (a string, or epoch time in s, ms, µs
// or ns). A stamp without a zone is read in loc; with a nil loc it is read
// both in UTC and in time.Local, and the later reading wins, so that a line
// is dated before a time only when every plausible reading is. A reading
// more than a minute in the future is a misread zone and is dropped; a line
// with no reading left is dated now.
func lineTime(l []byte, loc *time.Location) (time.Time, bool) {
	var (
		f     fields
		ok    bool
		epoch time.Time
	)
	if t := bytes.TrimSpace(l); len(t) > 0 && t[0] == '{' {
		f, epoch, ok = jsonStamp(t)
	} else {
		f, ok = stampFields(l)
	}
	if !ok {
		return time.Time{}, false
	}
	var readings []time.Time
	switch {
	case !epoch.IsZero():
		readings = []time.Time{epoch}
	case f.zone != nil:
		readings = []time.Time{f.in(f.zone)}
	case loc != nil:
		readings = []time.Time{f.in(loc)}
	default:
		readings = []time.Time{f.in(time.UTC), f.in(time.Local)}
	}
	limit := time.Now().Add(time.Minute)
	var best time.Time
	for _, r := range readings {
		if !r.After(limit) && r.After(best) {
			best = r
		}
	}
	if best.IsZero() {
		return time.Now(), true // only future readings: a misread zone; count the line as new
	}
	return best, true
}

// fields are the parts of a time stamp; zone is nil when it names none.
type fields struct {
	y, mo, d, h, mi, s, ns int
	zone                   *time.Location
}

func (f fields) in(loc *time.Location) time.Time {
	return time.Date(f.y, time.Month(f.mo), f.d, f.h, f.mi, f.s, f.ns, loc)
}

// jsonStamp reads the time member of a JSON log line: a stamp, or an epoch
// time (returned as epoch).
func jsonStamp(l []byte) (f fields, epoch time.Time, ok bool) {
	var members map[string]json.RawMessage
	if json.Unmarshal(l, &members) != nil {
		return fields{}, time.Time{}, false
	}
	for _, k := range []string{"time", "ts", "timestamp", "@timestamp"} {
		raw, found := members[k]
		if !found {
			continue
		}
		var s string
		if json.Unmarshal(raw, &s) == nil {
			f, ok := stampFields([]byte(s))
			return f, time.Time{}, ok
		}
		var n float64
		if json.Unmarshal(raw, &n) == nil && n > 0 {
			// Epoch time, its unit told by its size: seconds (zap),
			// milliseconds (pino, Java), micro- or nanoseconds.
			for n > 1e11 {
				n /= 1000
			}
			whole := math.Floor(n)
			return fields{}, time.Unix(int64(whole), int64((n-whole)*1e9)), true
		}
	}
	return fields{}, time.Time{}, false
}

// stampFields reads the time stamp a line or value starts with.
func stampFields(l []byte) (fields, bool) {
	m := timePattern.FindSubmatch(l)
	if m == nil {
		return fields{}, false
	}
	num := func(b []byte) int { n, _ := strconv.Atoi(string(b)); return n }
	f := fields{y: num(m[1]), mo: num(m[2]), d: num(m[3]), h: num(m[4]), mi: num(m[5]), s: num(m[6])}
	if frac := m[7]; len(frac) > 0 {
		fs := string(frac)
		if len(fs) > 9 {
			fs = fs[:9]
		}
		f.ns = num([]byte(fs + strings.Repeat("0", 9-len(fs))))
	}
	switch z := string(m[8]); {
	case z == "Z":
		f.zone = time.UTC
	case z != "":
		z = strings.Replace(z, ":", "", 1)
		off := (num([]byte(z[1:3]))*60 + num([]byte(z[3:5]))) * 60
		if z[0] == '-' {
			off = -off
		}
		f.zone = time.FixedZone("", off)
	}
	return f, true
}

var timePattern = regexp.MustCompile(`^\s*(?:\[|(?:time|ts)="?)?(\d{4})[-/](\d{2})[-/](\d{2})[T ](\d{2}):(\d{2}):(\d{2})(?:[.,](\d+))?(Z|[+-]\d{2}:?\d{2})?`)

func (s *LogScan) name() string {
	if s.Name != "" {
		return s.Name
	}
	return "no new errors in logs"
}

func (s *LogScan) check() Check {
	c := Check{Name: s.name(), OK: len(s.fresh) == 0, Critical: s.Critical, Kind: KindLogs}
	if c.OK {
		c.Detail = fmt.Sprintf("%d error lines since the baseline, all with known signatures", s.lines)
		return c
	}
	c.Detail = s.list(s.fresh, fmt.Sprintf("%s since the baseline:", count(len(s.fresh), "new error signature")))
	return c
}

// list writes head, then the signatures of fresh, most frequent first, one
// per line, up to MaxDetail.
func (s *LogScan) list(fresh map[string]*sighting, head string) string {
	sigs := make([]string, 0, len(fresh))
	for sig := range fresh {
		sigs = append(sigs, sig)
	}
	sort.Slice(sigs, func(i, j int) bool {
		a, b := fresh[sigs[i]], fresh[sigs[j]]
		if a.count != b.count {
			return a.count > b.count
		}
		return sigs[i] < sigs[j]
	})
	limit := s.MaxDetail
	if limit == 0 {
		limit = 5
	}
	var b strings.Builder
	b.WriteString(head)
	for i, sig := range sigs {
		if i == limit {
			fmt.Fprintf(&b, "\n- and %d more", len(sigs)-limit)
			break
		}
		f := fresh[sig]
		// Log lines may carry URLs with credentials: redact them, and
		// again once quoted, where an escaped control character (a "\r"
		// between "://" and "@") reads as a user name.
		example := redact.Text(strconv.Quote(redact.Clip(redact.Text(f.example), 200)))
		fmt.Fprintf(&b, "\n- %s (%d×, e.g. %s)", redact.Text(sig), f.count, example)
	}
	return b.String()
}

var _ Stateful = (*LogScan)(nil)

// State returns the known signatures as JSON, for [Stateful].
func (s *LogScan) State() ([]byte, error) { return json.Marshal(s.Baseline()) }

// Restore adds the signatures of a State to the known ones, so that a
// LogScan in a process that resumes a release judges as the first one did.
func (s *LogScan) Restore(state []byte) error {
	var sigs []string
	if err := json.Unmarshal(state, &sigs); err != nil {
		return fmt.Errorf("monitor: %s: restoring the baseline: %w", s.name(), err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.baseline == nil {
		s.baseline = make(map[string]struct{}, len(sigs))
	}
	for _, sig := range sigs {
		s.baseline[sig] = struct{}{}
	}
	if s.reads == 0 {
		s.history = true
	}
	return nil
}

// Baseline returns the known signatures, sorted: those of the baseline and
// Known. Saved and passed back as Known, they let a restarted process go on
// judging the same release.
func (s *LogScan) Baseline() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]string, 0, len(s.baseline))
	for sig := range s.baseline {
		out = append(out, sig)
	}
	sort.Strings(out)
	return out
}

// Close closes the tailed file. A deploy.Runner calls it when the release
// ends (it closes every monitor that is an io.Closer); call it yourself when
// you observe a LogScan without a runner. A later Observe opens the file
// again where it left off, or from its start if it was truncated or
// replaced meanwhile.
func (s *LogScan) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.f == nil {
		return nil
	}
	err := s.f.Close()
	s.f = nil
	return err
}

// sigPattern finds the parts of a line that vary between occurrences of the
// same error. The order of the alternatives matters: the first that matches
// at a position wins.
var sigPattern = regexp.MustCompile(strings.Join([]string{
	// 1: timestamps: RFC 3339 and similar, Go's log, syslog, a bare time of day.
	`(\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}:\d{2}(?:[.,]\d+)?(?:Z|[+-]\d{2}:?\d{2})?|\d{4}/\d{2}/\d{2} \d{2}:\d{2}:\d{2}(?:\.\d+)?|(?:Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) [ \d]\d \d{2}:\d{2}:\d{2}|\d{2}:\d{2}:\d{2}(?:\.\d+)?)`,
	// 2: UUIDs.
	`([0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12})`,
	// 3: quoted strings.
	`("(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*')`,
	// 4: IPv4 and IPv6 addresses, with an optional port.
	`((?:\d{1,3}\.){3}\d{1,3}(?::\d+)?|(?:\[|\b)(?:[0-9a-fA-F]{0,4}:){2,7}[0-9a-fA-F]{1,4}\]?(?::\d+)?)`,
	// 5: hex ids.
	`(0[xX][0-9a-fA-F]+|\b[0-9a-fA-F]{6,}\b)`,
	// 6: numbers.
	`(\d+(?:\.\d+)?)`,
	// 7: runs of white space.
	`(\s+)`,
}, "|"))

// keepQuoted are the keys whose quoted values carry the message itself; their
// contents are normalised rather than removed. Quoted JSON keys are kept too.
var keepQuoted = map[string]bool{
	"msg": true, "message": true, "error": true, "err": true, "level": true,
	"lvl": true, "severity": true, "logger": true, "caller": true,
	"component": true, "event": true, "exception": true, "reason": true,
}

// Signature normalises an error line into the signature that a [LogScan]
// compares: it replaces timestamps with <ts>, UUIDs with <uuid>, IP addresses
// with <ip>, hex ids (0x…, or six or more hex digits with at least one digit)
// with <hex>, other numbers with <n>, and quoted values with "*", and
// collapses white space. Quoted JSON keys and the quoted values of message
// keys (msg, message, error, err, level and a few more) are kept, their
// contents normalised, so that a structured log line keeps its message.
func Signature(line string) string {
	var b strings.Builder
	b.Grow(len(line))
	normalise(&b, line)
	return strings.TrimSpace(b.String())
}

func normalise(b *strings.Builder, line string) {
	last := 0
	for _, m := range sigPattern.FindAllStringSubmatchIndex(line, -1) {
		b.WriteString(line[last:m[0]])
		last = m[1]
		tok := line[m[0]:m[1]]
		switch {
		case m[2] >= 0:
			b.WriteString("<ts>")
		case m[4] >= 0:
			b.WriteString("<uuid>")
		case m[6] >= 0:
			if keepQuote(line, m[0], m[1]) {
				b.WriteByte(tok[0])
				normalise(b, tok[1:len(tok)-1])
				b.WriteByte(tok[len(tok)-1])
			} else {
				b.WriteString(`"*"`)
			}
		case m[8] >= 0:
			b.WriteString("<ip>")
		case m[10] >= 0:
			switch {
			case strings.IndexFunc(tok, isDigit) < 0:
				b.WriteString(tok) // a word such as "facade"
			case strings.IndexFunc(tok, notDigit) < 0:
				b.WriteString("<n>")
			default:
				b.WriteString("<hex>")
			}
		case m[12] >= 0:
			b.WriteString("<n>")
		default:
			b.WriteByte(' ')
		}
	}
	b.WriteString(line[last:])
}

func isDigit(r rune) bool  { return r >= '0' && r <= '9' }
func notDigit(r rune) bool { return !isDigit(r) }

// keepQuote reports whether the quoted string line[i:j] is a JSON key or the
// value of a message key.
func keepQuote(line string, i, j int) bool {
	before := strings.TrimRight(line[:i], " \t")
	rest := strings.TrimLeft(line[j:], " \t")
	if line[i] == '"' && strings.HasPrefix(rest, ":") && (strings.HasSuffix(before, "{") || strings.HasSuffix(before, ",")) {
		return true // a JSON key
	}
	switch {
	case strings.HasSuffix(before, "="):
		before = before[:len(before)-1]
	case strings.HasSuffix(before, ":"):
		before = strings.TrimRight(before[:len(before)-1], " \t")
		if !strings.HasSuffix(before, `"`) {
			return false
		}
		before = before[:len(before)-1]
	default:
		return false
	}
	k := len(before)
	for k > 0 && (isKeyByte(before[k-1])) {
		k--
	}
	key := strings.ToLower(before[k:])
	if dot := strings.LastIndexByte(key, '.'); dot >= 0 {
		key = key[dot+1:]
	}
	return keepQuoted[key]
}

func isKeyByte(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '.' || c == '-'
}

// mayBeError reports whether l contains error, fatal, panic or critical in
// any case: every match of DefaultErrorPattern does, and this test is some
// fifty times faster than the regular expression on lines that are not
// errors.
func mayBeError(l []byte) bool {
	for i := 0; i+5 <= len(l); i++ {
		var word string
		switch l[i] | 0x20 { // ASCII lower case
		case 'e':
			word = "error"
		case 'f':
			word = "fatal"
		case 'p':
			word = "panic"
		case 'c':
			word = "critical"
		default:
			continue
		}
		if i+len(word) <= len(l) && bytes.EqualFold(l[i:i+len(word)], []byte(word)) {
			return true
		}
	}
	return false
}
