package bootstrap

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"

	kgzip "github.com/klauspost/compress/gzip"
)

// piecesLevel is the gzip level of the pieces: klauspost's level 6 makes
// a 13.8 MB image 5.48 MB in 133 ms of one core, where the standard
// library's level 1 made 5.99 MB in 151 ms (its level 6: 5.36 MB, 424 ms).
const piecesLevel = 6

// Binary is an executable that can be sent to the far side, with its
// hash and (once asked for) its gzip'd bytes. It comes from a file, or
// from gzip'd bytes another context sent (NewBinaryGzip). Of a file, what
// is sent is its image: without DWARF and the symbol table when it is an
// ELF file (see stripImage), else the file as it is; Hash is the sha256 of
// that image, which is what runs and is cached on the far side.
//
// The gzip form is made in pieces of about a MiB, compressed at once on
// every CPU, each a gzip member: joined they are one stream for gzip -d.
// The first upload sends each piece as soon as it is ready, so the far side
// unpacks while this side still compresses; later uploads reuse them.
type Binary struct {
	Path string // "" when the binary came as bytes
	Hash string // hex sha256 of the image sent

	imageSize int64 // of the image sent, when it comes from Path

	fetch  func() ([]byte, error) // NewBinaryFetch: where the gzip'd bytes come from
	once   sync.Once
	pieces []*piece
	err    error          // reading the file
	work   sync.WaitGroup // the compressing goroutines; whoever waits for the pieces joins them

	joinOnce sync.Once
	joined   []byte
	joinErr  error

	sent sentState // of a binary from a file: its image kept, deltas made
}

// piece is one gzip member of the binary, ready once done is closed; err
// is why it could not be read (the file changed or went away meanwhile).
type piece struct {
	done chan struct{}
	gz   []byte
	err  error
}

// NewBinary is the executable at path, named by the hash of its image.
// The hash comes from the master's disk cache when the file is the one
// hashed before (same path, inode, size and mtime; see hashcache.go), else
// it reads and hashes the image, a buffer at a time, and caches the hash.
func NewBinary(path string) (*Binary, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("opening the binary: %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("opening the binary: %w", err)
	}
	key := fileKey(path, st)
	if e, ok := lookupHash(key); ok {
		return &Binary{Path: path, Hash: e.hash, imageSize: e.size}, nil
	}
	img := fileImage(f, st.Size())
	h := sha256.New()
	if _, err := io.Copy(h, io.NewSectionReader(img, 0, img.Size())); err != nil {
		return nil, fmt.Errorf("reading %s: %w", path, err)
	}
	b := &Binary{Path: path, Hash: hex.EncodeToString(h.Sum(nil)), imageSize: img.Size()}
	storeHash(key, hashEntry{hash: b.Hash, size: b.imageSize})
	return b, nil
}

// fileImage is the image of the executable file f of size bytes: stripped
// when planStrip can, else the file as it is.
func fileImage(f io.ReaderAt, size int64) *imageReader {
	extents, err := planStrip(f, size)
	if err != nil {
		extents = []extent{{off: 0, n: size}}
	}
	return newImageReader(f, extents)
}

// openImage opens the file at path and returns its image, which reads
// from the file until closed.
func openImage(path string) (*imageReader, io.Closer, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, nil, fmt.Errorf("opening the binary: %w", err)
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, nil, fmt.Errorf("opening the binary: %w", err)
	}
	return fileImage(f, st.Size()), f, nil
}

// readImage reads the file at path and returns its image, whole.
func readImage(path string) ([]byte, error) {
	img, f, err := openImage(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data := make([]byte, img.Size())
	if _, err := img.ReadAt(data, 0); err != nil {
		return nil, fmt.Errorf("reading the binary: %w", err)
	}
	return data, nil
}

// hashFile returns the hex sha256 of the file at path as it is.
func hashFile(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", fmt.Errorf("opening the binary: %w", err)
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", fmt.Errorf("hashing %s: %w", path, err)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// NewBinaryGzip is a binary known by its hash and gzip'd bytes. The far side
// checks the hash after unpacking, so bytes that do not match never run.
func NewBinaryGzip(hash string, gz []byte) *Binary {
	p := &piece{done: make(chan struct{}), gz: gz}
	close(p.done)
	b := &Binary{Hash: hash, pieces: []*piece{p}}
	b.once.Do(func() {})
	return b
}

// size is the binary's size in bytes (of its image, or of its gzip form
// when it came as bytes).
func (b *Binary) size() int64 {
	if b.Path == "" {
		gz, _ := b.Gzipped()
		return int64(len(gz))
	}
	return b.imageSize
}

// NewBinaryFetch is a binary known by its hash whose gzip'd bytes come
// from fetch, called once and only when they are needed (the far side lacks
// the binary).
func NewBinaryFetch(hash string, fetch func() ([]byte, error)) *Binary {
	return &Binary{Hash: hash, fetch: fetch}
}

// compress starts compressing the file, once; it returns at once. Its
// callers wait for the pieces and then join the goroutines (b.work), also
// when they return early: the work is bounded by the file's size.
func (b *Binary) compress() error {
	b.once.Do(func() {
		if b.fetch != nil {
			gz, err := b.fetch()
			if err != nil {
				b.err = err
				return
			}
			p := &piece{done: make(chan struct{}), gz: gz}
			close(p.done)
			b.pieces = []*piece{p}
			return
		}
		img, f, err := openImage(b.Path)
		if err != nil {
			b.err = err
			return
		}
		total := img.Size()
		size := max(1<<20, total/16)
		n := int(max(1, (total+size-1)/size))
		b.pieces = make([]*piece, n)
		for i := range b.pieces {
			b.pieces[i] = &piece{done: make(chan struct{})}
		}
		var next atomic.Int64
		workers := min(n, runtime.GOMAXPROCS(0))
		var running atomic.Int32
		running.Store(int32(workers))
		for range workers {
			b.work.Go(func() {
				defer func() {
					if running.Add(-1) == 0 {
						f.Close() // the last worker done: the file is read
					}
				}()
				// Each worker reads a part into its own buffer and
				// compresses it into its own scratch; a piece keeps an
				// exact copy.
				part := make([]byte, size)
				var buf bytes.Buffer
				var zw *kgzip.Writer
				for {
					i := next.Add(1) - 1
					if i >= int64(n) {
						return
					}
					p := part[:min(size, total-i*size)]
					buf.Reset()
					if _, err := img.ReadAt(p, i*size); err != nil {
						b.pieces[i].err = fmt.Errorf("reading %s: %w", b.Path, err)
						close(b.pieces[i].done)
						continue
					}
					if zw == nil {
						zw, _ = kgzip.NewWriterLevel(&buf, piecesLevel)
					} else {
						zw.Reset(&buf)
					}
					zw.Write(p)
					zw.Close()
					b.pieces[i].gz = bytes.Clone(buf.Bytes())
					close(b.pieces[i].done)
				}
			})
		}
	})
	return b.err
}

// Gzipped returns the whole binary gzip'd (its pieces joined).
func (b *Binary) Gzipped() ([]byte, error) {
	if err := b.compress(); err != nil {
		return nil, err
	}
	defer b.work.Wait()
	b.joinOnce.Do(func() {
		if len(b.pieces) == 1 { // came whole: nothing to join, nothing to copy
			<-b.pieces[0].done
			b.joined, b.joinErr = b.pieces[0].gz, b.pieces[0].err
			return
		}
		var all bytes.Buffer
		for _, p := range b.pieces {
			<-p.done
			if p.err != nil {
				b.joinErr = p.err
				return
			}
			all.Write(p.gz)
		}
		b.joined = all.Bytes()
	})
	return b.joined, b.joinErr
}

// Bytes returns the binary as it is sent: gzip'd, or plain for a far side
// without gzip.
func (b *Binary) Bytes(gzipped bool) ([]byte, error) {
	if gzipped || b.Path == "" {
		gz, err := b.Gzipped()
		if err != nil || gzipped {
			return gz, err
		}
		zr, err := gzip.NewReader(bytes.NewReader(gz))
		if err != nil {
			return nil, fmt.Errorf("unpacking the binary: %w", err)
		}
		return io.ReadAll(zr)
	}
	return readImage(b.Path)
}

// sendPieces writes the gzip'd pieces as stage 1 reads them: each as its
// byte count on a line and its bytes, then a 0 line. It returns the bytes
// of gzip sent.
func (b *Binary) sendPieces(w io.Writer) (int64, error) {
	if err := b.compress(); err != nil {
		return 0, err
	}
	defer b.work.Wait()
	var sent int64
	for i, p := range b.pieces {
		<-p.done
		if p.err != nil {
			return sent, p.err
		}
		if len(p.gz) == 0 {
			continue // a 0 would end the upload
		}
		// The pieces not yet compressed are guessed at this one's ratio.
		expect(w, (sent+int64(len(p.gz)))*int64(len(b.pieces))/int64(i+1))
		if _, err := io.WriteString(w, strconv.Itoa(len(p.gz))+"\n"); err != nil {
			return sent, fmt.Errorf("sending the binary: %w", err)
		}
		if _, err := w.Write(p.gz); err != nil {
			return sent, fmt.Errorf("sending the binary: %w", err)
		}
		sent += int64(len(p.gz))
	}
	if _, err := io.WriteString(w, "0\n"); err != nil {
		return sent, fmt.Errorf("sending the binary: %w", err)
	}
	return sent, nil
}

// sendWhole writes the binary, gzip'd or not, after its byte count.
func (b *Binary) sendWhole(w io.Writer, gzipped bool) (int64, error) {
	data, err := b.Bytes(gzipped)
	if err != nil {
		return 0, err
	}
	expect(w, int64(len(data)))
	if _, err := io.WriteString(w, strconv.Itoa(len(data))+"\n"); err != nil {
		return 0, fmt.Errorf("sending the binary: %w", err)
	}
	if _, err := w.Write(data); err != nil {
		return 0, fmt.Errorf("sending the binary: %w", err)
	}
	return int64(len(data)), nil
}
