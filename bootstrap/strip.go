package bootstrap

import (
	"bytes"
	"debug/elf"
	"errors"
	"fmt"
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

// errNoStrip is why a file is sent as it is: not ELF, nothing to leave
// out, or a layout stripImage does not rewrite.
var errNoStrip = errors.New("not stripped")

// removable reports whether a section of this name is left out.
func removable(name string) bool {
	return strings.HasPrefix(name, ".debug_") || strings.HasPrefix(name, ".zdebug_") ||
		name == ".symtab" || name == ".strtab"
}

// elfLayout is where the fields stripImage touches sit in one ELF class.
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

// stripImage returns data without the sections removable names, or
// errNoStrip (wrapped) when it cannot or need not: the caller then sends
// data as it is.
func stripImage(data []byte) ([]byte, error) {
	f, err := elf.NewFile(bytes.NewReader(data))
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
	size := uint64(len(data))
	shoff := word(data[lay.shoff:])
	shnum := int(bo.Uint16(data[lay.shnum:]))
	shstrndx := int(bo.Uint16(data[lay.shstrndx:]))
	if shnum == 0 || shnum != len(f.Sections) || shstrndx == 0 || shstrndx >= shnum ||
		shoff > size || uint64(shnum*lay.entsize) > size-shoff {
		return nil, fmt.Errorf("%w: section headers of a layout not handled", errNoStrip)
	}
	header := func(i int) []byte { return data[shoff+uint64(i*lay.entsize):][:lay.entsize] }

	// Everything up to the end of the last loaded byte (and of the ELF and
	// program headers) is kept as it is.
	keep := uint64(lay.ehsize)
	for _, p := range f.Progs {
		if p.Off > size || p.Filesz > size-p.Off {
			return nil, fmt.Errorf("%w: a segment beyond the file", errNoStrip)
		}
		keep = max(keep, p.Off+p.Filesz)
	}
	var phEnd uint64
	if f.Class == elf.ELFCLASS64 {
		phEnd = bo.Uint64(data[0x20:]) + uint64(bo.Uint16(data[0x36:]))*uint64(bo.Uint16(data[0x38:]))
	} else {
		phEnd = uint64(bo.Uint32(data[0x1c:])) + uint64(bo.Uint16(data[0x2a:]))*uint64(bo.Uint16(data[0x2c:]))
	}
	keep = max(keep, phEnd)
	if keep > size || phEnd < uint64(lay.ehsize) && len(f.Progs) > 0 {
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
		if off > size || sz > size-off {
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

	out := make([]byte, keep, keep+(end-keep)/4)
	copy(out, data[:keep])
	headers := make([]byte, 0, n*lay.entsize)
	for i := range shnum {
		if fate[i] == removed {
			continue
		}
		h := append([]byte(nil), header(i)...)
		if fate[i] == moved {
			off, sz := word(h[lay.shOffset:]), word(h[lay.shSize:])
			if align := word(h[lay.shAlign:]); align > 1 {
				for uint64(len(out))%align != 0 {
					out = append(out, 0)
				}
			}
			putWord(h[lay.shOffset:], uint64(len(out)))
			out = append(out, data[off:off+sz]...)
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
	for len(out)%lay.word != 0 {
		out = append(out, 0)
	}
	newShoff := uint64(len(out))
	out = append(out, headers...)
	// Bytes after all the file describes (something appended to the
	// executable) stay, after the new headers.
	out = append(out, data[end:]...)
	putWord(out[lay.shoff:], newShoff)
	bo.PutUint16(out[lay.shnum:], uint16(n))
	bo.PutUint16(out[lay.shstrndx:], uint16(newIndex[shstrndx]))

	if err := checkStripped(f, out); err != nil {
		return nil, fmt.Errorf("%w: the stripped image does not check: %v", errNoStrip, err)
	}
	return out, nil
}

// checkStripped reads out back: its program headers must equal orig's and
// load the same bytes, and no removable section may be left.
func checkStripped(orig *elf.File, out []byte) error {
	g, err := elf.NewFile(bytes.NewReader(out))
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
