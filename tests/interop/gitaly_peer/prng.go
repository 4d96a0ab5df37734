package main

import "encoding/binary"

// prng streams the same bytes as pseudoRandomBytes(total, seed) in tests/_util.ts:
// xorshift32 words stored little-endian, and the last total%4 bytes set to
// (index & 0xff). Both sides can therefore compute the expected sha256.
type prng struct {
	x     uint32
	pos   int64
	total int64
	word  [4]byte
}

func newPRNG(total int64, seed uint32) *prng {
	if seed == 0 {
		seed = 1
	}
	return &prng{x: seed, total: total}
}

func (g *prng) next() uint32 {
	g.x ^= g.x << 13
	g.x ^= g.x >> 17
	g.x ^= g.x << 5
	return g.x
}

// fill writes the next len(p) bytes (p must not run past total) and returns n.
func (g *prng) fill(p []byte) int {
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

func (g *prng) done() bool { return g.pos >= g.total }
