package files

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
)

// sender sends a local tree to links, reading each file once for all of
// them (twice when some receiver claims a prefix that must be checked).
type sender struct {
	links    []*link
	progress func(done, total int64)
	done     int64
	total    int64
	sent     int64     // data bytes sent on the busiest link
	buf      []byte    // for hashing claimed prefixes
	bufs     [3][]byte // for data: see readAhead
}

// sendTree sends the tree at src, as walk listed it, over every link,
// then kindDone. It fails when no link is left; a file that cannot be read
// is aborted for every receiver and ends the transfer.
func (s *sender) sendTree(ctx context.Context, src string, entries []entry, total int64) error {
	s.total = total
	s.buf = make([]byte, chunkSize)
	s.bufs = [3][]byte{s.buf, make([]byte, chunkSize), make([]byte, chunkSize)}
	for i := range entries {
		e := &entries[i]
		it := item{Kind: kindEntry, Entry: e}
		if i == 0 {
			it.Total = total
		}
		s.broadcast(&it)
		if e.Type == typeFile {
			if err := s.sendFile(ctx, filepath.Join(src, filepath.FromSlash(e.Path)), e); err != nil {
				s.broadcast(&item{Kind: kindAbort, Err: err.Error()})
				return err
			}
		}
		if !s.anyLive() {
			return s.firstErr()
		}
	}
	s.broadcast(&item{Kind: kindDone})
	return nil
}

func (s *sender) broadcast(it *item) {
	if it.Kind == kindData { // encoded once for every link
		payload := encodeData(it.Data)
		for _, l := range s.links {
			l.sendEncoded(payload)
		}
		return
	}
	for _, l := range s.links {
		l.send(it)
	}
}

func (s *sender) anyLive() bool {
	return slices.ContainsFunc(s.links, (*link).live)
}

func (s *sender) firstErr() error {
	for _, l := range s.links {
		if l.err != nil {
			return l.err
		}
	}
	return nil
}

func (s *sender) report(n int64) {
	s.done += n
	if s.progress != nil {
		s.progress(s.done, s.total)
	}
}

// sendFile sends one regular file after each receiver said what it has.
func (s *sender) sendFile(ctx context.Context, path string, e *entry) error {
	for _, l := range s.links {
		l.claim = item{}
		if l.recv(&l.claim) && l.claim.Kind != kindHave {
			l.fail(protocolf("%s answered a file with kind %d", l.name, l.claim.Kind))
		}
	}
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()

	// Check the claims: hash the prefix up to the longest, keeping the
	// hash's state at each claimed offset.
	states := map[int64][]byte{}
	var offs []int64
	for _, l := range s.links {
		if l.live() && l.claim.Off > 0 && l.claim.Off <= e.Size {
			offs = append(offs, l.claim.Off)
		}
	}
	slices.Sort(offs)
	offs = slices.Compact(offs)
	sums := map[int64][]byte{}
	if len(offs) > 0 {
		h := sha256.New()
		var pos int64
		for _, off := range offs {
			if _, err := io.CopyBuffer(h, io.LimitReader(f, off-pos), s.buf); err != nil {
				return err
			}
			pos = off
			sums[off] = h.Sum(nil)
			st, err := h.(encoding.BinaryMarshaler).MarshalBinary()
			if err != nil {
				return err
			}
			states[off] = st
		}
	}
	start := map[*link]int64{}
	from := e.Size
	for _, l := range s.links {
		if !l.live() {
			continue
		}
		ok := l.claim.Off > 0 && bytes.Equal(sums[l.claim.Off], l.claim.Hash)
		switch {
		case l.claim.Whole && e.Size == 0,
			ok && l.claim.Whole && l.claim.Off == e.Size:
			l.send(&item{Kind: kindSkip})
		case ok && !l.claim.Whole:
			start[l] = l.claim.Off
		default:
			start[l] = 0
		}
		if off, sending := start[l]; sending {
			l.send(&item{Kind: kindStart, Off: off})
			from = min(from, off)
		}
	}
	if len(start) == 0 {
		s.report(e.Size)
		return nil
	}
	h := sha256.New()
	if from > 0 {
		if err := h.(encoding.BinaryUnmarshaler).UnmarshalBinary(states[from]); err != nil {
			return err
		}
	}
	s.report(from)
	if _, err := f.Seek(from, io.SeekStart); err != nil {
		return err
	}
	// The next chunk is read while this one is hashed and sent: see
	// readAhead. A chunk's buffer goes back to the reader once the next
	// chunk's ah.write has waited for its hashing to end.
	ra := startReadAhead(f, e.Size-from, s.bufs[:])
	defer ra.stop()
	ah := &asyncHash{h: h}
	defer ah.wait()
	var prev []byte
	pos := from
	for pos < e.Size {
		c := ra.next()
		if c.err != nil {
			return fmt.Errorf("reading %s at %d (did it shrink?): %w", path, pos, c.err)
		}
		buf, n := c.buf, len(c.buf)
		ah.write(buf)
		if prev != nil {
			ra.release(prev)
		}
		prev = buf
		for l, off := range start {
			if off < pos+int64(n) {
				l.sendData(buf[max(off, pos)-pos : n])
			}
		}
		if !s.anyLiveIn(start) {
			return s.firstErr()
		}
		pos += int64(n)
		s.sent += int64(n)
		s.report(int64(n))
		if err := ctx.Err(); err != nil {
			return err
		}
	}
	sum := ah.sum()
	for l := range start {
		l.send(&item{Kind: kindEnd, Hash: sum})
	}
	return nil
}

func (s *sender) anyLiveIn(m map[*link]int64) bool {
	for l := range m {
		if l.live() {
			return true
		}
	}
	return false
}
