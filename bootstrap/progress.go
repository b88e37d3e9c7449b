package bootstrap

import "io"

// progressChunk is how much of an upload is written between two reports.
const progressChunk = 64 << 10

// progressWriter reports an upload's bytes as they are written, in chunks
// of progressChunk, with an estimate of the total that the sender keeps up
// to date (a gzip stream in pieces knows its size only at the end).
type progressWriter struct {
	w     io.Writer
	sent  int64
	total int64
	fn    func(sent, total int64)
}

// newProgressWriter wraps w; with fn nil it is w itself.
func newProgressWriter(w io.Writer, fn func(sent, total int64)) io.Writer {
	if fn == nil {
		return w
	}
	return &progressWriter{w: w, fn: fn}
}

func (p *progressWriter) Write(b []byte) (int, error) {
	n := 0
	for len(b) > 0 {
		k := min(len(b), progressChunk)
		m, err := p.w.Write(b[:k])
		n += m
		p.sent += int64(m)
		p.fn(p.sent, max(p.total, p.sent))
		if err != nil {
			return n, err
		}
		b = b[k:]
	}
	return n, nil
}

// expect sets the estimate of the total when w reports progress.
func expect(w io.Writer, total int64) {
	if p, ok := w.(*progressWriter); ok {
		p.total = total
	}
}
