// Package prng is shared by the Go interop peers under tests/interop/ (built in GOPATH
// mode with tests/interop/gopath on GOPATH).
package prng

import "encoding/binary"

// Stream produces the same bytes as pseudoRandomBytes(total, seed) in tests/_util.ts:
// xorshift32 words stored little-endian, and the last total%4 bytes set to
// (index & 0xff). Both sides can therefore compute the expected sha256.
type Stream struct {
	x     uint32
	pos   int64
	total int64
	word  [4]byte
}

// New returns the stream of total bytes for seed (0 counts as 1).
func New(total int64, seed uint32) *Stream {
	if seed == 0 {
		seed = 1
	}
	return &Stream{x: seed, total: total}
}

func (g *Stream) next() uint32 {
	g.x ^= g.x << 13
	g.x ^= g.x >> 17
	g.x ^= g.x << 5
	return g.x
}

// Fill writes the next bytes into p (at most up to total) and returns how many.
func (g *Stream) Fill(p []byte) int {
	if rest := g.total - g.pos; int64(len(p)) > rest {
		p = p[:rest]
	}
	wordsEnd := g.total &^ 3
	i := 0
	for i < len(p) {
		pos := g.pos + int64(i)
		if pos >= wordsEnd {
			p[i] = byte(pos & 0xff)
			i++
			continue
		}
		if pos&3 == 0 && len(p)-i >= 4 && pos+4 <= wordsEnd {
			binary.LittleEndian.PutUint32(p[i:], g.next())
			i += 4
			continue
		}
		if pos&3 == 0 {
			binary.LittleEndian.PutUint32(g.word[:], g.next())
		}
		p[i] = g.word[pos&3]
		i++
	}
	g.pos += int64(len(p))
	return len(p)
}

// Done reports whether all total bytes were produced.
func (g *Stream) Done() bool { return g.pos >= g.total }
