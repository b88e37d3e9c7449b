package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/mitogo/mitogo/actors"
	"golang.org/x/term"
)

// Output modes.
const (
	modeRaw    = iota // one target: its output as it is, no prefix
	modePrefix        // each line prefixed with its target's name
	modeGroup         // each target's output whole when it finishes
	modeJSON          // one JSON object per line
)

// printer writes the targets' output and results. Every write to stdout
// and stderr goes through mu, and so does the progress line, which is
// drawn only when mu is free: it never holds output back.
type printer struct {
	mode           int
	stdout, stderr io.Writer
	color          bool // colour the prefixes (stdout is a terminal)
	tty            bool // stderr is a terminal: progress line and summary
	width          int  // of the longest target name
	targets        []*targetOutput

	mu       sync.Mutex
	drawn    bool // the progress line is on the screen
	finished int
	counts   map[state]int // the finished targets, by how they ended
	running  map[int]bool
	uploads  map[string]actors.UploadProgress // mitogo being sent, by context

	stop chan struct{} // ends the progress goroutine
	wg   sync.WaitGroup
}

// targetOutput is where one target's output goes.
type targetOutput struct {
	p              *printer
	i              int
	name           string
	stdout, stderr io.Writer
	partial        []*lineWriter // flushed when the target finishes
	group          *groupBuffer  // modeGroup: the output kept until the end
}

// groupBuffer keeps a target's stdout and stderr in the order they came,
// for --group.
type groupBuffer struct {
	mu     sync.Mutex
	chunks []chunk
}

// chunk is output of one stream, as written.
type chunk struct {
	stream int // 1 stdout, 2 stderr
	data   []byte
}

// groupWriter is one stream of a groupBuffer.
type groupWriter struct {
	g      *groupBuffer
	stream int
}

func (w groupWriter) Write(b []byte) (int, error) {
	w.g.mu.Lock()
	defer w.g.mu.Unlock()
	if n := len(w.g.chunks); n > 0 && w.g.chunks[n-1].stream == w.stream {
		w.g.chunks[n-1].data = append(w.g.chunks[n-1].data, b...)
	} else {
		w.g.chunks = append(w.g.chunks, chunk{w.stream, append([]byte(nil), b...)})
	}
	return len(b), nil
}

// writeTo writes the output in the order it came, each chunk to its own
// stream, and ends each stream that was written to with a newline.
func (g *groupBuffer) writeTo(stdout, stderr io.Writer) {
	g.mu.Lock()
	defer g.mu.Unlock()
	last := map[int]byte{}
	for _, c := range g.chunks {
		if len(c.data) == 0 {
			continue
		}
		w := stdout
		if c.stream == 2 {
			w = stderr
		}
		w.Write(c.data)
		last[c.stream] = c.data[len(c.data)-1]
	}
	if b, ok := last[1]; ok && b != '\n' {
		io.WriteString(stdout, "\n")
	}
	if b, ok := last[2]; ok && b != '\n' {
		io.WriteString(stderr, "\n")
	}
}

func newPrinter(e *env, o *options, ts []*target) *printer {
	p := &printer{stdout: e.stdout, stderr: e.stderr, running: map[int]bool{}, counts: map[state]int{}, stop: make(chan struct{})}
	switch {
	case o.fleet.json:
		p.mode = modeJSON
	case o.fleet.group:
		p.mode = modeGroup
	case len(ts) > 1:
		p.mode = modePrefix
	}
	p.tty = len(ts) > 1 && isTerminalWriter(e.stderr)
	p.color = p.mode == modePrefix && isTerminalWriter(e.stdout) && os.Getenv("NO_COLOR") == "" && os.Getenv("TERM") != "dumb"
	for _, t := range ts {
		p.width = max(p.width, utf8.RuneCountInString(t.name))
	}
	for i, t := range ts {
		to := &targetOutput{p: p, i: i, name: t.name, stdout: e.stdout, stderr: e.stderr}
		switch p.mode {
		case modePrefix, modeJSON:
			out, errOut := &lineWriter{to: to, stream: 1}, &lineWriter{to: to, stream: 2}
			to.stdout, to.stderr, to.partial = out, errOut, []*lineWriter{out, errOut}
		case modeGroup:
			to.group = &groupBuffer{}
			to.stdout, to.stderr = groupWriter{to.group, 1}, groupWriter{to.group, 2}
		}
		p.targets = append(p.targets, to)
	}
	if p.tty {
		p.wg.Go(p.progressLoop)
	}
	return p
}

func isTerminalWriter(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && isTerminal(f)
}

// target is target i's output; it counts as running from now.
func (p *printer) target(i int) *targetOutput {
	p.mu.Lock()
	p.running[i] = true
	p.mu.Unlock()
	return p.targets[i]
}

// colors are ANSI foreground colours for the prefixes, by target.
var colors = []string{"36", "33", "32", "35", "34", "96", "93", "92", "95", "94"}

// prefix is the target's name, padded to the longest, then " | ".
func (to *targetOutput) prefix() string {
	pad := strings.Repeat(" ", to.p.width-utf8.RuneCountInString(to.name))
	if to.p.color {
		return "\x1b[" + colors[to.i%len(colors)] + "m" + to.name + "\x1b[0m" + pad + " | "
	}
	return to.name + pad + " | "
}

// lineWriter cuts a stream into lines and hands each, newline included,
// to its target's printer.
type lineWriter struct {
	to     *targetOutput
	stream int // 1 stdout, 2 stderr
	buf    []byte
}

func (w *lineWriter) Write(b []byte) (int, error) {
	w.buf = append(w.buf, b...)
	for {
		i := bytes.IndexByte(w.buf, '\n')
		if i < 0 {
			return len(b), nil
		}
		if err := w.to.line(w.stream, w.buf[:i+1]); err != nil {
			return 0, err
		}
		w.buf = w.buf[i+1:]
	}
}

// flush hands on a last line without a newline.
func (w *lineWriter) flush() {
	if len(w.buf) > 0 {
		w.to.line(w.stream, w.buf)
		w.buf = nil
	}
}

// line prints one line of output in the printer's mode.
func (to *targetOutput) line(stream int, line []byte) error {
	p := to.p
	p.mu.Lock()
	defer p.mu.Unlock()
	p.clearProgress()
	if p.mode == modeJSON {
		name := "stdout"
		if stream == 2 {
			name = "stderr"
		}
		rec := jsonRecord{Target: to.name, Stream: name}
		if utf8.Valid(line) {
			rec.Data = ptr(string(line))
		} else {
			rec.DataBase64 = line
		}
		return p.json(rec)
	}
	w := p.stdout
	if stream == 2 {
		w = p.stderr
	}
	if line[len(line)-1] != '\n' {
		line = append(line[:len(line):len(line)], '\n')
	}
	_, err := io.WriteString(w, to.prefix()+string(line))
	return err
}

// jsonRecord is one line of --json output.
type jsonRecord struct {
	Target       string    `json:"target"`
	Stream       string    `json:"stream,omitempty"`      // stdout, stderr
	Data         *string   `json:"data,omitempty"`        // a line of output, newline included
	DataBase64   []byte    `json:"data_base64,omitempty"` // a line that is not UTF-8
	Result       any       `json:"result,omitempty"`      // a call's result
	Status       string    `json:"status,omitempty"`      // the target's outcome, at its end
	Exit         *int      `json:"exit,omitempty"`
	Started      *bool     `json:"started,omitempty"`
	Duration     *float64  `json:"duration,omitempty"` // seconds
	Error        string    `json:"error,omitempty"`
	HostKeyAdded *keyAdded `json:"host_key_added,omitempty"`
}

// keyAdded is a host key accept-new recorded, in --json output.
type keyAdded struct {
	Host        string `json:"host"`
	Type        string `json:"type"`
	Fingerprint string `json:"fingerprint"`
	File        string `json:"file"`
}

func ptr[T any](v T) *T { return &v }

// json writes one record on a line of stdout; p.mu is held.
func (p *printer) json(rec jsonRecord) error {
	b, err := json.Marshal(rec)
	if err != nil {
		return err
	}
	_, err = p.stdout.Write(append(b, '\n'))
	return err
}

// result prints a call's result.
func (to *targetOutput) result(v any) error {
	p := to.p
	switch p.mode {
	case modeRaw, modeGroup:
		var b bytes.Buffer
		enc := json.NewEncoder(&b)
		enc.SetEscapeHTML(false)
		enc.SetIndent("", "  ")
		if err := enc.Encode(v); err != nil {
			return fmt.Errorf("printing the result: %w", err)
		}
		_, err := to.stdout.Write(b.Bytes())
		return err
	case modePrefix:
		var b bytes.Buffer
		enc := json.NewEncoder(&b)
		enc.SetEscapeHTML(false)
		if err := enc.Encode(v); err != nil {
			return fmt.Errorf("printing the result: %w", err)
		}
		return to.line(1, b.Bytes())
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.clearProgress()
	if v == nil {
		v = struct{}{} // a nil result still says the call returned
	}
	return p.json(jsonRecord{Target: to.name, Result: v})
}

// describe is an outcome in a few words: "ok", "exit 3", "unreachable".
func (o *outcome) describe() string {
	switch o.state {
	case stateFailed:
		if o.err == nil {
			return fmt.Sprintf("failed, exit %d", o.exit)
		}
	case stateTimedOut, stateInterrupted:
		if !o.started {
			return o.state.String() + " before it started"
		}
	}
	return o.state.String()
}

// done prints what is left of target i's output and how it ended.
func (p *printer) done(i int, o *outcome) {
	to := p.targets[i]
	for _, w := range to.partial {
		w.flush()
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.clearProgress()
	delete(p.running, i)
	p.finished++
	p.counts[o.state]++
	switch p.mode {
	case modeRaw:
		switch {
		case o.state == stateTimedOut:
			fmt.Fprintf(p.stderr, "mitogo: %s: %s\n", to.name, userLine(o.err))
		case o.err != nil && o.state != stateInterrupted:
			fmt.Fprintf(p.stderr, "mitogo: %s\n", userLine(o.err))
		}
	case modePrefix:
		// Every target that did not succeed says so on a line of its own,
		// a command's exit status as much as an unreachable host.
		switch {
		case o.err != nil:
			fmt.Fprintf(p.stderr, "%s%s: %s\n", to.prefix(), o.describe(), userLine(o.err))
		case o.state != stateOK:
			fmt.Fprintf(p.stderr, "%s%s\n", to.prefix(), o.describe())
		}
	case modeGroup:
		head := fmt.Sprintf("=== %s: %s", to.name, o.describe())
		if o.began {
			head += fmt.Sprintf(" (%s)", o.dur.Round(time.Millisecond))
		}
		if o.err != nil {
			head += ": " + userLine(o.err)
		}
		fmt.Fprintln(p.stdout, head)
		to.group.writeTo(p.stdout, p.stderr)
	case modeJSON:
		rec := jsonRecord{Target: to.name, Status: o.state.String(), Exit: ptr(o.exit),
			Started: ptr(o.started), Duration: ptr(o.dur.Seconds())}
		if o.err != nil {
			rec.Error = jsonLine(o.err)
		}
		p.json(rec)
	}
}

// hostKeys reports the host keys accept-new recorded: in the JSON stream,
// or in the summary.
func (p *printer) hostKeys(added []addedKey) {
	if p.mode != modeJSON {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, k := range added {
		p.json(jsonRecord{Target: k.target, HostKeyAdded: &keyAdded{Host: k.host, Type: k.keyType, Fingerprint: k.fingerprint, File: k.file}})
	}
}

// summary prints every target's outcome and duration to stderr.
func (p *printer) summary(outcomes []outcome, added []addedKey, took time.Duration) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.clearProgress()
	counts := map[state]int{}
	for _, o := range outcomes {
		counts[o.state]++
	}
	var b strings.Builder
	fmt.Fprintf(&b, "mitogo: %s in %s: %s\n", plural(len(outcomes), "target"), took.Round(time.Millisecond), countsText(counts, stateOK))
	for _, o := range outcomes {
		line := fmt.Sprintf("  %-*s  %-28s", p.width, o.t.name, o.describe())
		if o.began {
			line += fmt.Sprintf(" %8s", o.dur.Round(time.Millisecond))
		}
		if o.err != nil {
			line += "  " + userLine(o.err)
		}
		b.WriteString(strings.TrimRight(line, " ") + "\n")
	}
	if len(added) > 0 {
		b.WriteString("host keys added (accept-new):\n")
		for _, k := range added {
			fmt.Fprintf(&b, "  %-*s  %s %s %s, in %s\n", p.width, k.target, k.host, k.keyType, k.fingerprint, k.file)
		}
	}
	io.WriteString(p.stderr, b.String())
}

// upload takes an upload's progress into the progress line.
func (p *printer) upload(u actors.UploadProgress) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if u.Done {
		delete(p.uploads, u.Context)
		return
	}
	if p.uploads == nil {
		p.uploads = map[string]actors.UploadProgress{}
	}
	p.uploads[u.Context] = u
}

// close stops the progress line.
func (p *printer) close() {
	close(p.stop)
	p.wg.Wait()
	p.mu.Lock()
	p.clearProgress()
	p.mu.Unlock()
}

// progressLoop redraws the progress line a few times a second while
// targets are outstanding. It skips a redraw when output holds mu.
func (p *printer) progressLoop() {
	t := time.NewTicker(250 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-p.stop:
			return
		case <-t.C:
		}
		if !p.mu.TryLock() {
			continue
		}
		p.drawProgress()
		p.mu.Unlock()
	}
}

// countsText is "1 ok, 2 failed, 1 unreachable": the targets in each
// state from first on, in the order of the states.
func countsText(counts map[state]int, first state) string {
	var parts []string
	for s := first; s <= stateInterrupted; s++ {
		if counts[s] > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", counts[s], s))
		}
	}
	return strings.Join(parts, ", ")
}

// drawProgress draws "[done/total] 1 failed, 2 unreachable; running: a, b…"
// on stderr, counting as the summary does, cut to the terminal's width;
// p.mu is held.
func (p *printer) drawProgress() {
	var names []string
	for i := range p.targets {
		if p.running[i] {
			names = append(names, p.targets[i].name)
		}
	}
	line := fmt.Sprintf("[%d/%d]", p.finished, len(p.targets))
	if c := countsText(p.counts, stateOK+1); c != "" {
		line += " " + c + ";"
	}
	if len(names) > 0 {
		line += " running: " + strings.Join(names, ", ")
	}
	if up := uploadsText(p.uploads); up != "" {
		line += "; " + up
	}
	width := 80
	if f, ok := p.stderr.(*os.File); ok {
		if w, _, err := term.GetSize(int(f.Fd())); err == nil && w > 1 {
			width = w
		}
	}
	if r := []rune(line); len(r) > width-1 {
		line = string(r[:width-2]) + "…"
	}
	io.WriteString(p.stderr, "\r\x1b[K"+line)
	p.drawn = true
}

// clearProgress erases the progress line so output can take its place;
// p.mu is held.
func (p *printer) clearProgress() {
	if p.drawn {
		io.WriteString(p.stderr, "\r\x1b[K")
		p.drawn = false
	}
}
