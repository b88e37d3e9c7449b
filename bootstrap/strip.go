package bootstrap

import (
	"bytes"
	"debug/elf"
	"errors"
	"fmt"
	"io"
	"strings"
)

// What a child never needs of its executable is left out of the upload:
// DWARF (.debug_*, .zdebug_*) and the symbol table (.symtab, .strtab).
// Go's stack traces come from .gopclntab, which is loaded and stays. The
// image sent is still a valid ELF file: every byte that program headers
// load stays at its offset, kept sections that lay after the removed ones
// move up, and a new section header table is written at the end. Only the
// ELF header's e_shoff, e_shnum and e_shstrndx change within the loaded
// bytes (the loader does not read them).
//
// The image is never built in memory as a whole: planStrip describes it
// as a list of extents (ranges of the file, and the few bytes written
// anew), and an imageReader reads it from the file through that list, so
// that hashing, compressing and caching it cost a buffer, not 17 MB.

// errNoStrip is why a file is sent as it is: not ELF, nothing to leave
// out, or a layout planStrip does not rewrite.
var errNoStrip = errors.New("not stripped")

// removable reports whether a section of this name is left out.
func removable(name string) bool {
	return strings.HasPrefix(name, ".debug_") || strings.HasPrefix(name, ".zdebug_") ||
		name == ".symtab" || name == ".strtab"
}

// elfLayout is where the fields planStrip touches sit in one ELF class.
type elfLayout struct {
	ehsize                 int // the ELF header's size
	shoff, shnum, shstrndx int // offsets in the ELF header
	entsize                int // a section header's size
	// offsets in a section header
	shType, shFlags, shOffset, shSize, shLink, shInfo, shAlign int
	word                                                       int // 4 or 8: the size of shFlags..shSize, shAlign
}

var (
	layout64 = elfLayout{ehsize: 64, shoff: 0x28, shnum: 0x3c, shstrndx: 0x3e, entsize: 64,
		shType: 4, shFlags: 8, shOffset: 24, shSize: 32, shLink: 40, shInfo: 44, shAlign: 48, word: 8}
	layout32 = elfLayout{ehsize: 52, shoff: 0x20, shnum: 0x30, shstrndx: 0x32, entsize: 40,
		shType: 4, shFlags: 8, shOffset: 16, shSize: 20, shLink: 24, shInfo: 28, shAlign: 32, word: 4}
)

// extent is one piece of an image: n bytes of the file from off, or,
// when lit is not nil, those bytes themselves.
type extent struct {
	lit []byte
	off int64
	n   int64
}

// imageReader reads an image from the file it was planned on.
type imageReader struct {
	file    io.ReaderAt
	extents []extent
	starts  []int64 // of each extent in the image
	size    int64
}

// newImageReader is the image that extents make of file.
func newImageReader(file io.ReaderAt, extents []extent) *imageReader {
	r := &imageReader{file: file, extents: extents, starts: make([]int64, len(extents))}
	for i, e := range extents {
		r.starts[i] = r.size
		r.size += e.n
	}
	return r
}

// Size is the image's length in bytes.
func (r *imageReader) Size() int64 { return r.size }

// ReadAt reads the image's bytes from off, as io.ReaderAt.
func (r *imageReader) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 {
		return 0, fmt.Errorf("image: negative offset %d", off)
	}
	n := 0
	i := 0
	for i+1 < len(r.extents) && r.starts[i+1] <= off {
		i++
	}
	for ; i < len(r.extents) && len(p) > 0; i++ {
		e := r.extents[i]
		at := off - r.starts[i]
		if at >= e.n {
			continue
		}
		want := min(int64(len(p)), e.n-at)
		var got int
		var err error
		if e.lit != nil {
			got = copy(p[:want], e.lit[at:])
		} else {
			got, err = r.file.ReadAt(p[:want], e.off+at)
			if err == io.EOF && int64(got) == want {
				err = nil
			}
		}
		n += got
		off += int64(got)
		p = p[got:]
		if err != nil {
			return n, err
		}
		if int64(got) < want {
			return n, io.ErrUnexpectedEOF
		}
	}
	if len(p) > 0 {
		return n, io.EOF
	}
	return n, nil
}

// stripImage returns data without the sections removable names, or
// errNoStrip (wrapped) when it cannot or need not: the caller then sends
// data as it is.
func stripImage(data []byte) ([]byte, error) {
	file := bytes.NewReader(data)
	extents, err := planStrip(file, int64(len(data)))
	if err != nil {
		return nil, err
	}
	img := newImageReader(file, extents)
	out := make([]byte, img.Size())
	if _, err := img.ReadAt(out, 0); err != nil {
		return nil, fmt.Errorf("reading the image: %w", err)
	}
	return out, nil
}

// planStrip returns the extents of the file's image without the sections
// removable names, or errNoStrip (wrapped) when it cannot or need not: the
// caller then sends the file as it is.
func planStrip(file io.ReaderAt, size int64) ([]extent, error) {
	f, err := elf.NewFile(file)
	if err != nil {
		return nil, fmt.Errorf("%w: not ELF: %v", errNoStrip, err)
	}
	defer f.Close()
	var lay elfLayout
	switch f.Class {
	case elf.ELFCLASS64:
		lay = layout64
	case elf.ELFCLASS32:
		lay = layout32
	default:
		return nil, fmt.Errorf("%w: ELF class %v", errNoStrip, f.Class)
	}
	bo := f.ByteOrder
	word := func(b []byte) uint64 {
		if lay.word == 8 {
			return bo.Uint64(b)
		}
		return uint64(bo.Uint32(b))
	}
	putWord := func(b []byte, v uint64) {
		if lay.word == 8 {
			bo.PutUint64(b, v)
		} else {
			bo.PutUint32(b, uint32(v))
		}
	}
	usize := uint64(size)
	ehdr := make([]byte, lay.ehsize)
	if _, err := file.ReadAt(ehdr, 0); err != nil {
		return nil, fmt.Errorf("%w: reading the ELF header: %v", errNoStrip, err)
	}
	shoff := word(ehdr[lay.shoff:])
	shnum := int(bo.Uint16(ehdr[lay.shnum:]))
	shstrndx := int(bo.Uint16(ehdr[lay.shstrndx:]))
	if shnum == 0 || shnum != len(f.Sections) || shstrndx == 0 || shstrndx >= shnum ||
		shoff > usize || uint64(shnum*lay.entsize) > usize-shoff {
		return nil, fmt.Errorf("%w: section headers of a layout not handled", errNoStrip)
	}
	table := make([]byte, shnum*lay.entsize)
	if _, err := file.ReadAt(table, int64(shoff)); err != nil {
		return nil, fmt.Errorf("%w: reading the section headers: %v", errNoStrip, err)
	}
	header := func(i int) []byte { return table[i*lay.entsize:][:lay.entsize] }

	// Everything up to the end of the last loaded byte (and of the ELF and
	// program headers) is kept as it is.
	keep := uint64(lay.ehsize)
	for _, p := range f.Progs {
		if p.Off > usize || p.Filesz > usize-p.Off {
			return nil, fmt.Errorf("%w: a segment beyond the file", errNoStrip)
		}
		keep = max(keep, p.Off+p.Filesz)
	}
	var phEnd uint64
	if f.Class == elf.ELFCLASS64 {
		phEnd = bo.Uint64(ehdr[0x20:]) + uint64(bo.Uint16(ehdr[0x36:]))*uint64(bo.Uint16(ehdr[0x38:]))
	} else {
		phEnd = uint64(bo.Uint32(ehdr[0x1c:])) + uint64(bo.Uint16(ehdr[0x2a:]))*uint64(bo.Uint16(ehdr[0x2c:]))
	}
	keep = max(keep, phEnd)
	if keep > usize || phEnd < uint64(lay.ehsize) && len(f.Progs) > 0 {
		return nil, fmt.Errorf("%w: program headers beyond the file", errNoStrip)
	}

	// Which sections go, stay in place or move up.
	const (
		inPlace = iota
		moved
		removed
	)
	fate := make([]int, shnum)
	end := max(keep, shoff+uint64(shnum*lay.entsize)) // the end of what the ELF file describes
	nRemoved := 0
	for i := 1; i < shnum; i++ {
		h := header(i)
		typ := elf.SectionType(bo.Uint32(h[lay.shType:]))
		off, sz := word(h[lay.shOffset:]), word(h[lay.shSize:])
		if typ == elf.SHT_NOBITS || sz == 0 {
			continue // no bytes in the file: its header stays as it is
		}
		if off > usize || sz > usize-off {
			return nil, fmt.Errorf("%w: section %d beyond the file", errNoStrip, i)
		}
		end = max(end, off+sz)
		switch {
		case off+sz <= keep:
			// loaded, or among loaded bytes: stays
		case off < keep:
			return nil, fmt.Errorf("%w: section %s straddles the end of the loaded bytes", errNoStrip, f.Sections[i].Name)
		case removable(f.Sections[i].Name):
			fate[i] = removed
			nRemoved++
		default:
			fate[i] = moved
		}
	}
	if nRemoved == 0 {
		return nil, fmt.Errorf("%w: nothing to leave out", errNoStrip)
	}

	newIndex := make([]int, shnum)
	n := 0
	for i := range shnum {
		if fate[i] == removed {
			newIndex[i] = -1
			continue
		}
		newIndex[i] = n
		n++
	}
	remap := func(i uint32, what string) (uint32, error) {
		if int(i) >= shnum || newIndex[i] < 0 {
			return 0, fmt.Errorf("%w: a kept section's %s names section %d, which goes or does not exist", errNoStrip, what, i)
		}
		return uint32(newIndex[i]), nil
	}

	// The ELF header is written anew (its section header fields change);
	// the rest of the loaded bytes are the file's.
	extents := []extent{{lit: ehdr, n: int64(len(ehdr))}, {off: int64(lay.ehsize), n: int64(keep) - int64(lay.ehsize)}}
	length := keep // of the image so far
	pad := func(align uint64) {
		if k := (align - length%align) % align; k > 0 {
			extents = append(extents, extent{lit: make([]byte, k), n: int64(k)})
			length += k
		}
	}
	headers := make([]byte, 0, n*lay.entsize)
	for i := range shnum {
		if fate[i] == removed {
			continue
		}
		h := append([]byte(nil), header(i)...)
		if fate[i] == moved {
			off, sz := word(h[lay.shOffset:]), word(h[lay.shSize:])
			if align := word(h[lay.shAlign:]); align > 1 {
				pad(align)
			}
			putWord(h[lay.shOffset:], length)
			extents = append(extents, extent{off: int64(off), n: int64(sz)})
			length += sz
		}
		if i > 0 {
			if link := bo.Uint32(h[lay.shLink:]); link != 0 {
				l, err := remap(link, "sh_link")
				if err != nil {
					return nil, err
				}
				bo.PutUint32(h[lay.shLink:], l)
			}
			typ := elf.SectionType(bo.Uint32(h[lay.shType:]))
			flags := elf.SectionFlag(word(h[lay.shFlags:]))
			if info := bo.Uint32(h[lay.shInfo:]); info != 0 && (typ == elf.SHT_REL || typ == elf.SHT_RELA || flags&elf.SHF_INFO_LINK != 0) {
				v, err := remap(info, "sh_info")
				if err != nil {
					return nil, err
				}
				bo.PutUint32(h[lay.shInfo:], v)
			}
		}
		headers = append(headers, h...)
	}
	pad(uint64(lay.word))
	newShoff := length
	extents = append(extents, extent{lit: headers, n: int64(len(headers))})
	// Bytes after all the file describes (something appended to the
	// executable) stay, after the new headers.
	if end < usize {
		extents = append(extents, extent{off: int64(end), n: int64(usize - end)})
	}
	putWord(ehdr[lay.shoff:], newShoff)
	bo.PutUint16(ehdr[lay.shnum:], uint16(n))
	bo.PutUint16(ehdr[lay.shstrndx:], uint16(newIndex[shstrndx]))

	img := newImageReader(file, extents)
	if err := checkStripped(f, img); err != nil {
		return nil, fmt.Errorf("%w: the stripped image does not check: %v", errNoStrip, err)
	}
	return extents, nil
}

// checkStripped reads img back: its program headers must equal orig's and
// load the same bytes, and no removable section may be left.
func checkStripped(orig *elf.File, img *imageReader) error {
	g, err := elf.NewFile(img)
	if err != nil {
		return err
	}
	defer g.Close()
	if len(g.Progs) != len(orig.Progs) {
		return errors.New("program headers differ")
	}
	for i, p := range g.Progs {
		if p.ProgHeader != orig.Progs[i].ProgHeader {
			return fmt.Errorf("program header %d differs", i)
		}
	}
	for _, s := range g.Sections {
		if removable(s.Name) && s.Type != elf.SHT_NOBITS {
			return fmt.Errorf("section %s left", s.Name)
		}
	}
	return nil
}
