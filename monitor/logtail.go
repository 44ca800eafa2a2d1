package monitor

import (
	"bytes"
	"context"
	"io"
	"os"
)

// tail reads what was appended to the file since the last call.
func (s *LogScan) tail(ctx context.Context, line func([]byte)) error {
	if s.f == nil {
		f, err := os.Open(s.Path)
		if err != nil {
			return err
		}
		s.f = f
	}
	if err := s.readFrom(ctx, line); err != nil {
		return err
	}
	// Rotation: the path now names another file. The old one is finished
	// (everything written to it before the rename was read above).
	cur, err := s.f.Stat()
	if err != nil {
		return err
	}
	st, err := os.Stat(s.Path)
	if err != nil || os.SameFile(cur, st) {
		return nil // not recreated yet, or the same file
	}
	if len(s.partial) > 0 {
		line(s.partial)
		s.partial = s.partial[:0]
	}
	f, err := os.Open(s.Path)
	if err != nil {
		return nil // rotated but not openable yet; try again next time
	}
	s.f.Close()
	s.f, s.off, s.mark = f, 0, s.mark[:0]
	return s.readFrom(ctx, line)
}

// readFrom reads s.f from s.off to its end, starting again from the top when
// the file has shrunk below s.off (truncation).
func (s *LogScan) readFrom(ctx context.Context, line func([]byte)) error {
	st, err := s.f.Stat()
	if err != nil {
		return err
	}
	if st.Size() < s.off || !s.markHolds() {
		// Truncated (copytruncate), perhaps written past the old offset
		// since: what is there now is new, from its start.
		s.off = 0
		s.partial = s.partial[:0]
	}
	if _, err := s.f.Seek(s.off, io.SeekStart); err != nil {
		return err
	}
	if err := s.readAll(ctx, countingReader{s.f, &s.off}, line, false); err != nil {
		return err
	}
	s.remember()
	return nil
}

// markLen is how many bytes before the offset are remembered.
const markLen = 64

// remember keeps the bytes just before the offset.
func (s *LogScan) remember() {
	n := min(s.off, markLen)
	if cap(s.mark) < markLen {
		s.mark = make([]byte, 0, markLen)
	}
	s.mark = s.mark[:n]
	if n == 0 {
		return
	}
	if _, err := s.f.ReadAt(s.mark, s.off-n); err != nil {
		s.mark = s.mark[:0]
	}
}

// markHolds reports whether the bytes before the offset are still those
// read: a file truncated and written again past the old offset between two
// observations (logrotate's copytruncate) has other bytes there.
func (s *LogScan) markHolds() bool {
	n := int64(len(s.mark))
	if n == 0 || s.off < n {
		return true
	}
	buf := make([]byte, n)
	if _, err := s.f.ReadAt(buf, s.off-n); err != nil {
		return false
	}
	return bytes.Equal(buf, s.mark)
}

type countingReader struct {
	r io.Reader
	n *int64
}

func (c countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	*c.n += int64(n)
	return n, err
}

// readAll reads r to io.EOF and calls line for each complete line. An
// incomplete last line waits in s.partial for the next read, unless flush.
func (s *LogScan) readAll(ctx context.Context, r io.Reader, line func([]byte), flush bool) error {
	buf := make([]byte, 32<<10)
	for {
		if err := ctx.Err(); err != nil {
			return context.Cause(ctx)
		}
		n, err := r.Read(buf)
		data := buf[:n]
		for len(data) > 0 {
			i := bytes.IndexByte(data, '\n')
			if i < 0 {
				if room := maxLine - len(s.partial); room > 0 {
					s.partial = append(s.partial, data[:min(room, len(data))]...)
				}
				break
			}
			l := data[:i]
			if len(s.partial) > 0 {
				if room := maxLine - len(s.partial); room > 0 {
					s.partial = append(s.partial, l[:min(room, len(l))]...)
				}
				l = s.partial
			}
			line(bytes.TrimSuffix(l, []byte("\r")))
			s.partial = s.partial[:0]
			data = data[i+1:]
		}
		if err == io.EOF {
			if flush && len(s.partial) > 0 {
				line(s.partial)
				s.partial = s.partial[:0]
			}
			return nil
		}
		if err != nil {
			return err
		}
	}
}
