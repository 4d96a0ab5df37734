package main

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"sidechanneltest/prng"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/yamux"
)

// maxReports caps per-stream entries in the JSON line.
const maxReports = 1024

type peer struct {
	o       *options
	sess    *yamux.Session
	fc      *frameConn
	stageMu sync.Mutex
	stageV  string
}

func (p *peer) setStage(s string) {
	p.stageMu.Lock()
	p.stageV = s
	p.stageMu.Unlock()
}

func (p *peer) stage() string {
	p.stageMu.Lock()
	defer p.stageMu.Unlock()
	return p.stageV
}

func (p *peer) runMode() (result, error) {
	switch p.o.mode {
	case "echo-server":
		return p.serve(true)
	case "sink":
		return p.serve(false)
	case "echo-client":
		return p.echoClient()
	case "source":
		return p.source()
	case "ping":
		return p.ping()
	case "rst":
		return p.rst()
	case "goaway":
		return p.goAway()
	case "accept-and-hold":
		return p.hold(true)
	case "idle":
		return p.hold(false)
	}
	return nil, fmt.Errorf("unknown -mode %q", p.o.mode)
}

func flagWasSet(name string) bool {
	set := false
	flag.Visit(func(f *flag.Flag) {
		if f.Name == name {
			set = true
		}
	})
	return set
}

type streamReport struct {
	Index    int     `json:"index"`
	ID       uint32  `json:"id"`
	Sent     int64   `json:"bytesSent"`
	Received int64   `json:"bytesReceived"`
	SentSHA  string  `json:"sha256Sent,omitempty"`
	RecvSHA  string  `json:"sha256Received,omitempty"`
	OK       bool    `json:"ok"`
	Error    *string `json:"error,omitempty"`
}

func (r *streamReport) fail(err error) {
	if err == nil || r.Error != nil {
		return
	}
	s := err.Error()
	r.Error = &s
	r.OK = false
}

func hexSum(h interface{ Sum([]byte) []byte }) string {
	return hex.EncodeToString(h.Sum(nil))
}

func mibps(n int64, d time.Duration) float64 {
	if d <= 0 {
		return 0
	}
	return float64(n) / (1 << 20) / d.Seconds()
}

// serve accepts streams and echoes (echo=true) or drains them (sink) until each
// stream's FIN, then closes the stream. It ends after -streams streams (when the
// flag is given) or when the peer ends the session.
func (p *peer) serve(echo bool) (result, error) {
	limit := 0
	if flagWasSet("streams") {
		limit = p.o.streams
	}
	var (
		mu       sync.Mutex
		reports  []streamReport
		total    int64
		failures int
		first    time.Time
		last     time.Time
		wg       sync.WaitGroup
	)
	finished := make(chan struct{}, 1<<16)
	acceptErr := make(chan error, 1)
	p.setStage("accepting")
	go func() {
		index := 0
		for {
			st, err := p.sess.AcceptStream()
			if err != nil {
				acceptErr <- err
				return
			}
			wg.Add(1)
			go func(index int, st *yamux.Stream) {
				defer wg.Done()
				rep := streamReport{Index: index, ID: st.StreamID(), OK: true}
				h := sha256.New()
				buf := make([]byte, p.o.chunk)
				var writeErr error
				started := false
				n, err := readAllLimited(st, buf, p.o.readRate, func(b []byte) {
					if !started {
						started = true
						mu.Lock()
						if first.IsZero() {
							first = time.Now()
						}
						mu.Unlock()
					}
					if p.o.hash || echo {
						h.Write(b)
					}
					if echo && writeErr == nil {
						if _, err := st.Write(b); err != nil {
							writeErr = err
						} else {
							rep.Sent += int64(len(b))
						}
					}
				})
				rep.Received = n
				if p.o.hash || echo {
					rep.RecvSHA = hexSum(h)
				}
				rep.fail(err)
				rep.fail(writeErr)
				st.Close()
				mu.Lock()
				last = time.Now()
				total += n
				if !rep.OK {
					failures++
				}
				if len(reports) < maxReports {
					reports = append(reports, rep)
				}
				mu.Unlock()
				finished <- struct{}{}
			}(index, st)
			index++
		}
	}()

	done := 0
	var endErr error
	peerClosed := false
wait:
	for {
		select {
		case endErr = <-acceptErr:
			peerClosed = true
			break wait
		case <-finished:
			done++
			if limit > 0 && done >= limit {
				break wait
			}
		}
	}
	p.setStage("draining handlers")
	waitGroupTimeout(&wg, 5*time.Second)
	if !peerClosed {
		p.gracefulClose()
	}
	mu.Lock()
	defer mu.Unlock()
	sort.Slice(reports, func(i, j int) bool { return reports[i].Index < reports[j].Index })
	res := result{
		"streams":       len(reports),
		"bytes":         total,
		"streamReports": reports,
		"failures":      failures,
		"sessionEnd":    errText(endErr),
	}
	if !first.IsZero() {
		res["mibPerSec"] = mibps(total, last.Sub(first))
	}
	if limit > 0 && done < limit {
		return res, fmt.Errorf("peer closed the session after %d of %d streams: %v", done, limit, endErr)
	}
	if failures > 0 {
		return res, fmt.Errorf("%d stream(s) failed", failures)
	}
	return res, nil
}

func waitGroupTimeout(wg *sync.WaitGroup, d time.Duration) bool {
	ch := make(chan struct{})
	go func() {
		wg.Wait()
		close(ch)
	}()
	select {
	case <-ch:
		return true
	case <-time.After(d):
		return false
	}
}

// writePRNG writes total pseudo-random bytes (seed) to w in -chunk writes.
func (p *peer) writePRNG(w io.Writer, total int64, seed uint32, h io.Writer) (int64, error) {
	gen := prng.New(total, seed)
	buf := make([]byte, p.o.chunk)
	var sent int64
	for !gen.Done() {
		n := gen.Fill(buf)
		if h != nil {
			h.Write(buf[:n])
		}
		m, err := w.Write(buf[:n])
		sent += int64(m)
		if err != nil {
			return sent, err
		}
	}
	return sent, nil
}

// endWrites finishes our direction of a stream according to -half-close.
func (p *peer) endWrites(st *yamux.Stream) error {
	switch p.o.halfClose {
	case "raw":
		return p.fc.injectFIN(st.StreamID())
	case "close":
		return st.Close()
	case "none":
		return nil
	}
	return fmt.Errorf("unknown -half-close %q", p.o.halfClose)
}

// echoRoundTrip sends total PRNG bytes on st, ends writes, reads the echo back and
// compares hashes.
func (p *peer) echoRoundTrip(index int, st *yamux.Stream, total int64) streamReport {
	seed := uint32(index + 1)
	rep := streamReport{Index: index, ID: st.StreamID(), OK: true}
	sent := sha256.New()
	recv := sha256.New()
	type readOut struct {
		n   int64
		err error
	}
	readDone := make(chan readOut, 1)
	go func() {
		buf := make([]byte, p.o.chunk)
		var r io.Reader = st
		if p.o.halfClose == "none" {
			r = io.LimitReader(st, total)
		}
		n, err := readAllLimited(r, buf, 0, func(b []byte) { recv.Write(b) })
		readDone <- readOut{n, err}
	}()
	n, err := p.writePRNG(st, total, seed, sent)
	rep.Sent = n
	rep.fail(err)
	if err == nil {
		rep.fail(p.endWrites(st))
	}
	out := <-readDone
	rep.Received = out.n
	rep.fail(out.err)
	if p.o.halfClose == "none" {
		st.Close()
	}
	rep.SentSHA = hexSum(sent)
	rep.RecvSHA = hexSum(recv)
	if rep.OK && (rep.Sent != rep.Received || rep.SentSHA != rep.RecvSHA) {
		rep.fail(fmt.Errorf("echo mismatch: sent %d bytes, received %d", rep.Sent, rep.Received))
	}
	return rep
}

func (p *peer) echoClient() (result, error) {
	p.setStage("echo")
	start := time.Now()
	reports := make([]streamReport, p.o.streams)
	var wg sync.WaitGroup
	for i := 0; i < p.o.streams; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			st, err := p.sess.OpenStream()
			if err != nil {
				reports[i] = streamReport{Index: i}
				reports[i].fail(fmt.Errorf("open: %w", err))
				return
			}
			reports[i] = p.echoRoundTrip(i, st, p.o.bytes)
		}(i)
	}
	wg.Wait()
	elapsed := time.Since(start)
	failures := 0
	var total int64
	for _, r := range reports {
		if !r.OK {
			failures++
		}
		total += r.Received
	}
	p.setStage("closing")
	p.gracefulClose()
	if len(reports) > maxReports {
		reports = reports[:maxReports]
	}
	res := result{
		"streams":       p.o.streams,
		"bytes":         total,
		"seconds":       elapsed.Seconds(),
		"mibPerSec":     mibps(total, elapsed),
		"halfClose":     p.o.halfClose,
		"streamReports": reports,
		"failures":      failures,
	}
	if failures > 0 {
		return res, fmt.Errorf("%d of %d stream(s) failed", failures, p.o.streams)
	}
	return res, nil
}

// source opens -streams streams, sends -bytes each and closes them, then waits
// until the peer has closed every stream too (its FIN), which is when the data
// has certainly been received.
func (p *peer) source() (result, error) {
	p.setStage("sending")
	start := time.Now()
	reports := make([]streamReport, p.o.streams)
	var wg sync.WaitGroup
	for i := 0; i < p.o.streams; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			rep := streamReport{Index: i, OK: true}
			defer func() { reports[i] = rep }()
			st, err := p.sess.OpenStream()
			if err != nil {
				rep.fail(fmt.Errorf("open: %w", err))
				return
			}
			rep.ID = st.StreamID()
			h := sha256.New()
			var hw io.Writer
			if p.o.hash {
				hw = h
			}
			rep.Sent, err = p.writePRNG(st, p.o.bytes, uint32(i+1), hw)
			if p.o.hash {
				rep.SentSHA = hexSum(h)
			}
			rep.fail(err)
			rep.fail(st.Close())
		}(i)
	}
	wg.Wait()
	p.setStage("waiting for the peer's FINs")
	for p.sess.NumStreams() > 0 && !p.sess.IsClosed() {
		time.Sleep(time.Millisecond)
	}
	elapsed := time.Since(start)
	open := p.sess.NumStreams()
	failures := 0
	var total int64
	for _, r := range reports {
		if !r.OK {
			failures++
		}
		total += r.Sent
	}
	p.setStage("closing")
	p.gracefulClose()
	if len(reports) > maxReports {
		reports = reports[:maxReports]
	}
	res := result{
		"streams":       p.o.streams,
		"bytes":         total,
		"seconds":       elapsed.Seconds(),
		"mibPerSec":     mibps(total, elapsed),
		"streamReports": reports,
		"failures":      failures,
	}
	if failures > 0 {
		return res, fmt.Errorf("%d of %d stream(s) failed", failures, p.o.streams)
	}
	if open > 0 {
		return res, fmt.Errorf("session closed with %d stream(s) not closed by the peer", open)
	}
	return res, nil
}

func (p *peer) ping() (result, error) {
	p.setStage("pinging")
	rtts := make([]time.Duration, 0, p.o.count)
	for i := 0; i < p.o.count; i++ {
		start := time.Now()
		if _, err := p.sess.Ping(); err != nil {
			return result{"pings": len(rtts)}, fmt.Errorf("ping %d: %w", i, err)
		}
		rtts = append(rtts, time.Since(start))
	}
	sort.Slice(rtts, func(i, j int) bool { return rtts[i] < rtts[j] })
	us := func(d time.Duration) float64 { return float64(d) / float64(time.Microsecond) }
	pct := func(q int) time.Duration {
		if len(rtts) == 0 {
			return 0
		}
		i := len(rtts) * q / 100
		if i >= len(rtts) {
			i = len(rtts) - 1
		}
		return rtts[i]
	}
	res := result{"pings": len(rtts)}
	if len(rtts) > 0 {
		var sum time.Duration
		for _, d := range rtts {
			sum += d
		}
		res["p50Us"] = us(pct(50))
		res["p99Us"] = us(pct(99))
		res["minUs"] = us(rtts[0])
		res["maxUs"] = us(rtts[len(rtts)-1])
		res["meanUs"] = us(sum / time.Duration(len(rtts)))
	}
	p.setStage("closing")
	p.gracefulClose()
	return res, nil
}

// hold accepts streams and never reads them (accept=true), or never accepts at all
// (idle), until the peer ends the session or -hold passes.
func (p *peer) hold(accept bool) (result, error) {
	p.setStage("holding")
	var accepted int64
	var held []*yamux.Stream
	var mu sync.Mutex
	if accept {
		go func() {
			for {
				st, err := p.sess.AcceptStream()
				if err != nil {
					return
				}
				mu.Lock()
				held = append(held, st)
				mu.Unlock()
				atomic.AddInt64(&accepted, 1)
			}
		}()
	}
	peerClosed := p.waitSessionEnd(p.o.hold)
	if !peerClosed {
		p.gracefulClose()
	}
	mu.Lock()
	defer mu.Unlock()
	return result{"accepted": atomic.LoadInt64(&accepted), "peerClosed": peerClosed}, nil
}

// rst exercises stream resets. hashicorp's 2019 snapshot has no Stream.Reset: it
// sends RST only when its accept backlog is full or after its own GoAway (see the
// idle and goaway modes). Here "-dir send" injects a raw RST frame (Window Update,
// flag RST, length 0) at a frame boundary; "-dir recv" lets the peer reset and
// reports what Read and Write return. Either way a second stream then does an echo
// round trip to show that the session survived.
func (p *peer) rst() (result, error) {
	res := result{"dir": p.o.dir, "opener": p.o.opener}
	var st *yamux.Stream
	var err error
	p.setStage("stream 1")
	if p.o.opener == "go" {
		st, err = p.sess.OpenStream()
	} else {
		st, err = p.sess.AcceptStream()
	}
	if err != nil {
		return res, fmt.Errorf("stream 1: %w", err)
	}
	res["streamId"] = st.StreamID()
	switch p.o.dir {
	case "send":
		if p.o.opener == "go" {
			n, err := p.writePRNG(st, p.o.bytes, 1, nil)
			res["bytesWritten"] = n
			if err != nil {
				return res, fmt.Errorf("write before reset: %w", err)
			}
		} else {
			n, err := io.CopyN(io.Discard, st, p.o.bytes)
			res["bytesRead"] = n
			if err != nil {
				return res, fmt.Errorf("read before reset: %w", err)
			}
		}
		if err := p.fc.injectRST(st.StreamID()); err != nil {
			return res, fmt.Errorf("inject RST: %w", err)
		}
		res["method"] = "raw RST frame (Window Update, flag RST) injected into the connection"
	case "recv":
		p.setStage("waiting for the peer's RST")
		readErr, writeErr, nr, nw := readWriteUntilError(st, p.o.bytes, p.o.chunk)
		res["readError"] = errText(readErr)
		res["writeError"] = errText(writeErr)
		res["bytesRead"] = nr
		res["bytesWritten"] = nw
		if readErr != yamux.ErrConnectionReset || writeErr != yamux.ErrConnectionReset {
			return res, fmt.Errorf("want %q from Read and Write, got read %v, write %v",
				yamux.ErrConnectionReset, readErr, writeErr)
		}
	default:
		return res, fmt.Errorf("-dir must be send or recv, got %q", p.o.dir)
	}

	p.setStage("stream 2 echo")
	if p.o.opener == "go" {
		st2, err := p.sess.OpenStream()
		if err != nil {
			return res, fmt.Errorf("stream 2: %w", err)
		}
		rep := p.echoRoundTrip(1, st2, 4096)
		res["afterReset"] = rep
		if !rep.OK {
			return res, fmt.Errorf("echo on a new stream after the reset failed: %s", *rep.Error)
		}
		p.gracefulClose()
	} else {
		st2, err := p.sess.AcceptStream()
		if err != nil {
			return res, fmt.Errorf("stream 2: %w", err)
		}
		var buf bytes.Buffer
		if _, err := io.Copy(&buf, st2); err != nil {
			return res, fmt.Errorf("stream 2 read: %w", err)
		}
		if _, err := st2.Write(buf.Bytes()); err != nil {
			return res, fmt.Errorf("stream 2 write: %w", err)
		}
		st2.Close()
		res["afterResetEchoed"] = buf.Len()
		p.waitSessionEnd(0)
	}
	return res, nil
}

// waitRSTReceived polls the frame log until a RST for id arrives.
func (p *peer) waitRSTReceived(id uint32, limit time.Duration) bool {
	deadline := time.Now().Add(limit)
	for time.Now().Before(deadline) {
		for _, got := range p.fc.stats().RSTReceived {
			if got == id {
				return true
			}
		}
		if p.sess.IsClosed() {
			return false
		}
		time.Sleep(time.Millisecond)
	}
	return false
}

// readWriteUntilError reads and writes concurrently until both fail (a reset
// should fail both). If the writes complete first, one more write is tried after
// the read failed.
func readWriteUntilError(st *yamux.Stream, total int64, chunk int) (readErr, writeErr error, nr, nw int64) {
	wdone := make(chan struct{})
	go func() {
		defer close(wdone)
		buf := make([]byte, chunk)
		gen := prng.New(total, 7)
		for !gen.Done() {
			n := gen.Fill(buf)
			m, err := st.Write(buf[:n])
			atomic.AddInt64(&nw, int64(m))
			if err != nil {
				writeErr = err
				return
			}
		}
	}()
	buf := make([]byte, chunk)
	for {
		n, err := st.Read(buf)
		nr += int64(n)
		if err != nil {
			readErr = err
			break
		}
	}
	<-wdone
	if writeErr == nil {
		_, writeErr = st.Write([]byte("after reset"))
	}
	return readErr, writeErr, nr, atomic.LoadInt64(&nw)
}

// goAway: "-dir send" accepts one stream, reads it to its FIN, calls GoAway(),
// echoes what it read and closes the stream (so the peer has the GoAway before it
// sees the end of the echo), then waits for the peer to end the session and
// reports the SYNs it refused. "-dir recv" opens a stream, sends -bytes,
// half-closes, reads the echo to its end, then checks that OpenStream is refused.
func (p *peer) goAway() (result, error) {
	res := result{"dir": p.o.dir}
	switch p.o.dir {
	case "send":
		p.setStage("accepting stream 1")
		st, err := p.sess.AcceptStream()
		if err != nil {
			return res, fmt.Errorf("accept: %w", err)
		}
		var buf bytes.Buffer
		if _, err := io.Copy(&buf, st); err != nil {
			return res, fmt.Errorf("read stream 1: %w", err)
		}
		p.setStage("GoAway")
		if err := p.sess.GoAway(); err != nil {
			return res, fmt.Errorf("GoAway: %w", err)
		}
		synsBefore := p.fc.synCount()
		if _, err := st.Write(buf.Bytes()); err != nil {
			return res, fmt.Errorf("echo stream 1: %w", err)
		}
		st.Close()
		res["echoed"] = buf.Len()
		var after int64
		go func() {
			for {
				if _, err := p.sess.AcceptStream(); err != nil {
					return
				}
				atomic.AddInt64(&after, 1)
			}
		}()
		p.setStage("waiting for the peer to close")
		p.waitSessionEnd(0)
		res["synAfterGoAway"] = p.fc.synCount() - synsBefore
		res["acceptedAfterGoAway"] = atomic.LoadInt64(&after)
		if after > 0 {
			return res, fmt.Errorf("accepted %d stream(s) after GoAway", after)
		}
	case "recv":
		p.setStage("stream 1")
		st, err := p.sess.OpenStream()
		if err != nil {
			return res, fmt.Errorf("open stream 1: %w", err)
		}
		rep := p.echoRoundTrip(0, st, p.o.bytes)
		res["stream1"] = rep
		if !rep.OK {
			return res, fmt.Errorf("stream 1: %s", *rep.Error)
		}
		select {
		case <-p.fc.goAwayRecvCh:
		default:
			return res, errors.New("no GoAway arrived before the end of the echo")
		}
		p.setStage("open after GoAway")
		st2, err := p.sess.OpenStream()
		if err != nil {
			res["openError"] = err.Error()
			res["refusedBy"] = "OpenStream"
			if err != yamux.ErrRemoteGoAway {
				return res, fmt.Errorf("OpenStream after GoAway: want %q, got %v", yamux.ErrRemoteGoAway, err)
			}
		} else {
			// The SYN went out: the peer must answer with RST.
			st2.Write([]byte("x"))
			_, rerr := st2.Read(make([]byte, 1))
			res["openError"] = errText(rerr)
			res["refusedBy"] = "RST"
			if rerr != yamux.ErrConnectionReset {
				return res, fmt.Errorf("stream opened after GoAway: want RST, got %v", rerr)
			}
		}
		// hashicorp refuses locally, so the peer never saw a SYN. Send one raw
		// (an id this session never uses) to check that the peer answers RST.
		p.setStage("raw SYN after GoAway")
		rawID := uint32(0x7ffffff1)
		if p.o.role == "server" {
			rawID = 0x7ffffff0
		}
		if err := p.fc.inject(encodeHeader(typeWindowUpdate, flagSYN, rawID, 0)); err != nil {
			return res, fmt.Errorf("inject SYN: %w", err)
		}
		res["rawSynId"] = rawID
		if !p.waitRSTReceived(rawID, 5*time.Second) {
			return res, fmt.Errorf("no RST for a SYN (stream %d) sent after the peer's GoAway", rawID)
		}
		res["rawSynRefusedByRst"] = true
		p.gracefulClose()
	default:
		return res, fmt.Errorf("-dir must be send or recv, got %q", p.o.dir)
	}
	return res, nil
}
