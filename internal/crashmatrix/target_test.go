package crashmatrix

import (
	"bufio"
	"errors"
	"fmt"
	"math"
	"os"
	"strconv"
	"strings"
	"syscall"
)

// target is a fenced target kept in an append-only file, shared by the
// processes of one cell: each change is a line "ok token action exposure
// pid", or "REFUSED …" when its token is lower than the highest token of an
// accepted change. An flock(2) on the file serialises the processes.
type target struct{ path string }

// errStale is what target.change returns for a refused change.
var errStale = errors.New("crashmatrix: change refused: stale fencing token")

// keep is the exposure of a change that does not change the exposure (a
// rollback step, a deploy to the idle side).
const keep = -1.0

// change records action under token, setting the exposure (or keeping it,
// with keep); it returns errStale, with a REFUSED line written, when a
// newer holder has already changed the target. A token of 0 is a change
// that carries no token: the target cannot refuse it.
func (t target) change(token int64, action string, exposure float64) error {
	f, err := os.OpenFile(t.path, os.O_CREATE|os.O_RDWR|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	defer f.Close()
	if err := flock(f, syscall.LOCK_EX); err != nil {
		return err
	}
	effects, err := parseEffects(f)
	if err != nil {
		return err
	}
	var highest int64
	cur := 0.0
	for _, e := range effects {
		if e.ok {
			highest = max(highest, e.token)
			cur = e.exposure
		}
	}
	if exposure == keep {
		exposure = cur
	}
	verdict := "ok"
	if token != 0 && token < highest { // token 0: a change that carries none
		verdict = "REFUSED"
	}
	if _, err := fmt.Fprintf(f, "%s %d %s %g %d\n", verdict, token, action, exposure, os.Getpid()); err != nil {
		return err
	}
	if verdict != "ok" {
		return fmt.Errorf("%w: %s under token %d, the target has taken token %d", errStale, action, token, highest)
	}
	return nil
}

// exposure is the target's exposure now: that of its last accepted change.
func (t target) exposure() (float64, error) {
	effects, err := readEffects(t.path)
	if err != nil {
		return 0, err
	}
	cur := 0.0
	for _, e := range effects {
		if e.ok {
			cur = e.exposure
		}
	}
	return cur, nil
}

// effect is one line of the effects file.
type effect struct {
	ok       bool
	token    int64
	action   string
	exposure float64
	pid      int
}

func (e effect) String() string {
	v := "ok"
	if !e.ok {
		v = "REFUSED"
	}
	return fmt.Sprintf("%s %d %s %g pid %d", v, e.token, e.action, e.exposure, e.pid)
}

// readEffects returns the effects file's lines, read under a shared lock
// so that no line is read half written; a missing file has none.
func readEffects(path string) ([]effect, error) {
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	if err := flock(f, syscall.LOCK_SH); err != nil {
		return nil, err
	}
	return parseEffects(f)
}

// flock takes an flock(2) on f, released when f is closed.
func flock(f *os.File, how int) error {
	for {
		err := syscall.Flock(int(f.Fd()), how)
		if err != syscall.EINTR {
			if err != nil {
				return fmt.Errorf("locking %s: %w", f.Name(), err)
			}
			return nil
		}
	}
}

func parseEffects(f *os.File) ([]effect, error) {
	var out []effect
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) != 5 || fields[0] != "ok" && fields[0] != "REFUSED" {
			return nil, fmt.Errorf("%s: malformed line %q", f.Name(), sc.Text())
		}
		token, err1 := strconv.ParseInt(fields[1], 10, 64)
		exposure, err2 := strconv.ParseFloat(fields[3], 64)
		pid, err3 := strconv.Atoi(fields[4])
		if err := errors.Join(err1, err2, err3); err != nil || math.IsNaN(exposure) {
			return nil, fmt.Errorf("%s: malformed line %q: %v", f.Name(), sc.Text(), err)
		}
		out = append(out, effect{ok: fields[0] == "ok", token: token, action: fields[2], exposure: exposure, pid: pid})
	}
	return out, sc.Err()
}
