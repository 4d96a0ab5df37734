package main

import (
	"encoding/binary"
	"net"
	"sync"
	"sync/atomic"
)

// Yamux wire constants (hashicorp spec.md "Framing").
const (
	headerSize = 12

	typeData         = 0
	typeWindowUpdate = 1
	typePing         = 2
	typeGoAway       = 3

	flagSYN = 0x1
	flagACK = 0x2
	flagFIN = 0x4
	flagRST = 0x8
)

// frameHeader is one decoded 12-byte yamux header.
type frameHeader struct {
	version  uint8
	typ      uint8
	flags    uint16
	streamID uint32
	length   uint32
}

func encodeHeader(typ uint8, flags uint16, streamID, length uint32) []byte {
	b := make([]byte, headerSize)
	b[0] = 0
	b[1] = typ
	binary.BigEndian.PutUint16(b[2:4], flags)
	binary.BigEndian.PutUint32(b[4:8], streamID)
	binary.BigEndian.PutUint32(b[8:12], length)
	return b
}

// frameParser follows a yamux byte stream and calls onFrame for every header.
// It does not buffer payloads: it only counts them, so it costs nearly nothing.
type frameParser struct {
	hdr       [headerSize]byte
	hdrLen    int
	remaining uint32
	onFrame   func(frameHeader)
}

func (p *frameParser) feed(b []byte) {
	for len(b) > 0 {
		if p.remaining > 0 {
			n := uint32(len(b))
			if n > p.remaining {
				n = p.remaining
			}
			p.remaining -= n
			b = b[n:]
			continue
		}
		n := copy(p.hdr[p.hdrLen:], b)
		p.hdrLen += n
		b = b[n:]
		if p.hdrLen < headerSize {
			return
		}
		p.hdrLen = 0
		h := frameHeader{
			version:  p.hdr[0],
			typ:      p.hdr[1],
			flags:    binary.BigEndian.Uint16(p.hdr[2:4]),
			streamID: binary.BigEndian.Uint32(p.hdr[4:8]),
			length:   binary.BigEndian.Uint32(p.hdr[8:12]),
		}
		if h.typ == typeData {
			p.remaining = h.length
		}
		if p.onFrame != nil {
			p.onFrame(h)
		}
	}
}

func (p *frameParser) atBoundary() bool {
	return p.hdrLen == 0 && p.remaining == 0
}

// frameConn sits between hashicorp/yamux and the TCP connection. It watches the
// frames going both ways (to count RSTs and notice GoAways) and can inject a raw
// frame into the outgoing byte stream at a frame boundary. The 2019 hashicorp
// snapshot has no Stream.Reset and no read-after-close, so injecting a RST or a FIN
// frame is the only way to make it send them on demand.
type frameConn struct {
	net.Conn

	writeMu sync.Mutex
	atFrame *sync.Cond
	out     frameParser
	in      frameParser // only touched by the session's single reader goroutine

	statsMu      sync.Mutex
	rstSent      []uint32
	rstReceived  []uint32
	synReceived  []uint32
	goAwaySent   []uint32
	goAwayRecv   []uint32
	goAwayRecvCh chan struct{}
	goAwayOnce   sync.Once
	bytesIn      int64
	bytesOut     int64
}

func newFrameConn(c net.Conn) *frameConn {
	fc := &frameConn{Conn: c, goAwayRecvCh: make(chan struct{})}
	fc.atFrame = sync.NewCond(&fc.writeMu)
	fc.out.onFrame = func(h frameHeader) {
		fc.statsMu.Lock()
		defer fc.statsMu.Unlock()
		if h.typ == typeGoAway {
			fc.goAwaySent = append(fc.goAwaySent, h.length)
		} else if (h.typ == typeData || h.typ == typeWindowUpdate) && h.flags&flagRST != 0 {
			fc.rstSent = append(fc.rstSent, h.streamID)
		}
	}
	fc.in.onFrame = func(h frameHeader) {
		fc.statsMu.Lock()
		defer fc.statsMu.Unlock()
		switch h.typ {
		case typeGoAway:
			fc.goAwayRecv = append(fc.goAwayRecv, h.length)
			fc.goAwayOnce.Do(func() { close(fc.goAwayRecvCh) })
		case typeData, typeWindowUpdate:
			if h.flags&flagRST != 0 {
				fc.rstReceived = append(fc.rstReceived, h.streamID)
			}
			if h.flags&flagSYN != 0 {
				fc.synReceived = append(fc.synReceived, h.streamID)
			}
		}
	}
	return fc
}

func (fc *frameConn) Read(b []byte) (int, error) {
	n, err := fc.Conn.Read(b)
	if n > 0 {
		fc.in.feed(b[:n])
		atomic.AddInt64(&fc.bytesIn, int64(n))
	}
	return n, err
}

func (fc *frameConn) Write(b []byte) (int, error) {
	fc.writeMu.Lock()
	defer fc.writeMu.Unlock()
	n, err := fc.Conn.Write(b)
	if n > 0 {
		fc.out.feed(b[:n])
		atomic.AddInt64(&fc.bytesOut, int64(n))
	}
	if fc.out.atBoundary() {
		fc.atFrame.Broadcast()
	}
	return n, err
}

// inject writes a complete frame once the outgoing stream is between frames.
func (fc *frameConn) inject(frame []byte) error {
	fc.writeMu.Lock()
	defer fc.writeMu.Unlock()
	for !fc.out.atBoundary() {
		fc.atFrame.Wait()
	}
	_, err := fc.Conn.Write(frame)
	fc.out.feed(frame)
	atomic.AddInt64(&fc.bytesOut, int64(len(frame)))
	return err
}

// injectRST resets a stream on the wire (Window Update, flag RST, length 0 as
// hashicorp sends it). The local hashicorp stream object does not learn about it.
func (fc *frameConn) injectRST(id uint32) error {
	return fc.inject(encodeHeader(typeWindowUpdate, flagRST, id, 0))
}

// injectFIN half-closes a stream on the wire without touching the local state, so
// that hashicorp 2019 keeps delivering reads until the peer's FIN.
func (fc *frameConn) injectFIN(id uint32) error {
	return fc.inject(encodeHeader(typeWindowUpdate, flagFIN, id, 0))
}

// closeWrite half-closes the TCP connection (a graceful end: the peer sees EOF).
func (fc *frameConn) closeWrite() error {
	fc.writeMu.Lock()
	defer fc.writeMu.Unlock()
	if tc, ok := fc.Conn.(*net.TCPConn); ok {
		return tc.CloseWrite()
	}
	return fc.Conn.Close()
}

type frameStats struct {
	RSTSent     []uint32 `json:"rstSent"`
	RSTReceived []uint32 `json:"rstReceived"`
	GoAwaySent  []uint32 `json:"goAwaySent"`
	GoAwayRecv  []uint32 `json:"goAwayReceived"`
	SYNReceived int      `json:"synReceived"`
	BytesIn     int64    `json:"bytesIn"`
	BytesOut    int64    `json:"bytesOut"`
}

func (fc *frameConn) stats() frameStats {
	fc.statsMu.Lock()
	defer fc.statsMu.Unlock()
	return frameStats{
		RSTSent:     append([]uint32{}, fc.rstSent...),
		RSTReceived: append([]uint32{}, fc.rstReceived...),
		GoAwaySent:  append([]uint32{}, fc.goAwaySent...),
		GoAwayRecv:  append([]uint32{}, fc.goAwayRecv...),
		SYNReceived: len(fc.synReceived),
		BytesIn:     atomic.LoadInt64(&fc.bytesIn),
		BytesOut:    atomic.LoadInt64(&fc.bytesOut),
	}
}

func (fc *frameConn) synCount() int {
	fc.statsMu.Lock()
	defer fc.statsMu.Unlock()
	return len(fc.synReceived)
}
