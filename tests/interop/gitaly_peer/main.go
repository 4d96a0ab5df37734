// Command gitaly_peer plays Gitaly's roles in the backchannel/sidechannel protocol,
// written from gitaly.md (not from Gitaly's code), over Debian's hashicorp/yamux and
// grpc-go, for sidechannel's interop tests:
//
//   - -mode server: Gitaly's server. A listener that peeks 11 bytes: "backchannel"
//     starts a yamux server (accept backlog 1, 16 MiB window, keepalive off) whose
//     stream 1 is served by grpc-go; anything else is served as plain gRPC with the
//     bytes replayed. /sc.Interop/Echo opens a sidechannel toward the caller
//     ("sidechannel" + int64 BE id, expects "ok" within 5 s), de-frames the request
//     pkt by pkt up to "0000", echoes it raw, closes (FIN), and answers with the
//     sha256 and length of what it received.
//   - -mode client: Gitaly's clients (Workhorse). Dials, writes "backchannel", runs a
//     yamux client (backlog 256, 256 KiB window, keepalive off), carries grpc-go on
//     stream 1, and takes server-opened streams: "sidechannel" + id goes to its
//     registry (ids from 0), which writes "ok" and runs the call's callback: write
//     -bytes PRNG bytes framed (chunks <= 65516, header and chunk as two writes), then
//     "0000", while reading the raw echo to EOF; sha256 both ways are compared.
//
// Prints "LISTEN <port>" (server), then one JSON line: {"ok":true,...} or
// {"ok":false,"error":...}; exit status 0 iff ok.
package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/ioutil"
	"log"
	"net"
	"os"
	"os/signal"
	"sidechanneltest/prng"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/hashicorp/yamux"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/encoding"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
)

const (
	magicBackchannel = "backchannel"
	magicSidechannel = "sidechannel"
	idMetadata       = "gitaly-sidechannel-id"
	maxChunk         = 65516
	echoMethod       = "/sc.Interop/Echo"
)

// rawCodec passes []byte messages through, under "raw" (application/grpc+raw) and
// "proto" (bare application/grpc).
type rawCodec struct{ name string }

func (c rawCodec) Name() string { return c.name }

func (rawCodec) Marshal(v interface{}) ([]byte, error) {
	switch m := v.(type) {
	case *[]byte:
		return *m, nil
	case []byte:
		return m, nil
	}
	return nil, fmt.Errorf("raw codec: cannot marshal %T", v)
}

func (rawCodec) Unmarshal(data []byte, v interface{}) error {
	m, ok := v.(*[]byte)
	if !ok {
		return fmt.Errorf("raw codec: cannot unmarshal into %T", v)
	}
	*m = append([]byte(nil), data...)
	return nil
}

func init() {
	encoding.RegisterCodec(rawCodec{"raw"})
	encoding.RegisterCodec(rawCodec{"proto"})
}

type result map[string]interface{}

func emit(r result) {
	line, _ := json.Marshal(r)
	fmt.Println(string(line))
	if ok, _ := r["ok"].(bool); !ok {
		os.Exit(1)
	}
	os.Exit(0)
}

func fail(mode string, err error) {
	emit(result{"ok": false, "mode": mode, "error": err.Error()})
}

func main() {
	mode := flag.String("mode", "", "server | client")
	listen := flag.String("listen", "127.0.0.1:0", "server: listen address (loopback only)")
	target := flag.String("target", "", "client: server address 127.0.0.1:PORT")
	size := flag.Int64("bytes", 64<<20, "client: bytes to send through each sidechannel")
	calls := flag.Int("calls", 1, "client: concurrent calls on the one connection")
	timeout := flag.Duration("timeout", 2*time.Minute, "whole run")
	serveFor := flag.Duration("serve-for", 5*time.Minute, "server: stop after this long")
	flag.Parse()
	log.SetOutput(os.Stderr)
	time.AfterFunc(*timeout, func() { fail(*mode, fmt.Errorf("timed out after %s", *timeout)) })
	switch *mode {
	case "server":
		runServer(*listen, *serveFor)
	case "client":
		runClient(*target, *size, *calls)
	default:
		fail(*mode, errors.New("-mode must be server or client"))
	}
}

func yamuxConfig(backlog int, window uint32) *yamux.Config {
	cfg := yamux.DefaultConfig()
	cfg.AcceptBacklog = backlog
	cfg.MaxStreamWindowSize = window
	cfg.EnableKeepAlive = false // "gRPC is already configured to send keep alives"
	cfg.LogOutput = os.Stderr
	return cfg
}

// ---- server (Gitaly's role) ----

// replayConn serves the peeked bytes before the rest of the connection.
type replayConn struct {
	net.Conn
	r io.Reader
}

func (c *replayConn) Read(p []byte) (int, error) { return c.r.Read(p) }

// oneConnListener hands out one connection, then blocks until closed.
type oneConnListener struct {
	conn   net.Conn
	once   sync.Once
	closed chan struct{}
	addr   net.Addr
}

func newOneConnListener(conn net.Conn) *oneConnListener {
	return &oneConnListener{conn: conn, closed: make(chan struct{}), addr: conn.LocalAddr()}
}

func (l *oneConnListener) Accept() (net.Conn, error) {
	var c net.Conn
	l.once.Do(func() { c = l.conn })
	if c != nil {
		return c, nil
	}
	<-l.closed
	return nil, errors.New("listener closed")
}

func (l *oneConnListener) Close() error {
	select {
	case <-l.closed:
	default:
		close(l.closed)
	}
	return nil
}

func (l *oneConnListener) Addr() net.Addr { return l.addr }

type serverStats struct {
	mu           sync.Mutex
	multiplexed  int
	plain        int
	sidechannels int
	rejected     int
	bytes        int64
	errors       []string
}

func (s *serverStats) note(f func(*serverStats)) {
	s.mu.Lock()
	f(s)
	s.mu.Unlock()
}

func runServer(addr string, serveFor time.Duration) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		fail("server", err)
	}
	fmt.Printf("LISTEN %d\n", ln.Addr().(*net.TCPAddr).Port)
	stats := &serverStats{}
	stop := make(chan os.Signal, 1)
	signal.Notify(stop, syscall.SIGTERM, syscall.SIGINT)
	go func() {
		select {
		case <-stop:
		case <-time.After(serveFor):
		}
		ln.Close()
	}()
	for {
		conn, err := ln.Accept()
		if err != nil {
			break
		}
		go serveConn(conn, stats)
	}
	stats.mu.Lock()
	defer stats.mu.Unlock()
	emit(result{
		"ok": len(stats.errors) == 0, "mode": "server", "multiplexed": stats.multiplexed, "plain": stats.plain,
		"sidechannels": stats.sidechannels, "rejected": stats.rejected, "bytes": stats.bytes, "errors": stats.errors,
		"error": fmt.Sprint(stats.errors),
	})
}

func serveConn(conn net.Conn, stats *serverStats) {
	peeked, err := ioutil.ReadAll(io.LimitReader(conn, 11))
	if err != nil {
		conn.Close()
		return
	}
	if string(peeked) != magicBackchannel {
		stats.note(func(s *serverStats) { s.plain++ })
		srv := newGrpcServer(nil, stats)
		srv.Serve(newOneConnListener(&replayConn{conn, io.MultiReader(bytes.NewReader(peeked), conn)}))
		return
	}
	session, err := yamux.Server(conn, yamuxConfig(1, 16<<20))
	if err != nil {
		conn.Close()
		return
	}
	stream1, err := session.Accept()
	if err != nil {
		session.Close()
		return
	}
	stats.note(func(s *serverStats) { s.multiplexed++ })
	srv := newGrpcServer(session, stats)
	go func() {
		<-session.CloseChan()
		srv.Stop()
	}()
	srv.Serve(newOneConnListener(stream1))
	session.Close()
}

func newGrpcServer(session *yamux.Session, stats *serverStats) *grpc.Server {
	srv := grpc.NewServer()
	srv.RegisterService(&grpc.ServiceDesc{
		ServiceName: "sc.Interop",
		HandlerType: (*interface{})(nil),
		Methods: []grpc.MethodDesc{{
			MethodName: "Echo",
			Handler: func(_ interface{}, ctx context.Context, dec func(interface{}) error, _ grpc.UnaryServerInterceptor) (interface{}, error) {
				var req []byte
				if err := dec(&req); err != nil {
					return nil, err
				}
				resp, err := echoHandler(ctx, session, stats)
				if err != nil {
					if status.Code(err) == codes.FailedPrecondition {
						// A plain client asking for a sidechannel: expected in tests.
						stats.note(func(s *serverStats) { s.rejected++ })
					} else {
						stats.note(func(s *serverStats) { s.errors = append(s.errors, err.Error()) })
					}
					return nil, err
				}
				return &resp, nil
			},
		}},
	}, struct{}{})
	return srv
}

// openSidechannel follows gitaly.md §2.3.
func openSidechannel(ctx context.Context, session *yamux.Session) (*yamux.Stream, error) {
	md, ok := metadata.FromIncomingContext(ctx)
	if !ok {
		return nil, status.Error(codes.Internal, "sidechannel: failed to extract incoming metadata")
	}
	ids := md.Get(idMetadata)
	if len(ids) == 0 {
		return nil, status.Error(codes.Internal, "sidechannel: sidechannel-id not found in incoming metadata")
	}
	id, _ := strconv.ParseInt(ids[len(ids)-1], 10, 64)
	if session == nil {
		return nil, status.Error(codes.FailedPrecondition, "sidechannel: non-multiplexed connection")
	}
	stream, err := session.OpenStream()
	if err != nil {
		return nil, status.Errorf(codes.Unavailable, "sidechannel: open stream: %v", err)
	}
	stream.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := stream.Write([]byte(magicSidechannel)); err != nil {
		stream.Close()
		return nil, status.Errorf(codes.Unavailable, "sidechannel: write magic bytes: %v", err)
	}
	if err := binary.Write(stream, binary.BigEndian, id); err != nil {
		stream.Close()
		return nil, status.Errorf(codes.Unavailable, "sidechannel: write stream id: %v", err)
	}
	buf := make([]byte, 2)
	if _, err := io.ReadFull(stream, buf); err != nil {
		stream.Close()
		return nil, status.Errorf(codes.Unavailable, "sidechannel: receive confirmation: %v", err)
	}
	if string(buf) != "ok" {
		stream.Close()
		return nil, status.Errorf(codes.Internal, "sidechannel: expected ok, got %q", buf)
	}
	stream.SetDeadline(time.Time{})
	return stream, nil
}

// echoHandler de-frames the client's packets up to "0000" and writes each payload back raw.
func echoHandler(ctx context.Context, session *yamux.Session, stats *serverStats) ([]byte, error) {
	stream, err := openSidechannel(ctx, session)
	if err != nil {
		return nil, err
	}
	defer stream.Close()
	stats.note(func(s *serverStats) { s.sidechannels++ })
	hash := sha256.New()
	var total int64
	header := make([]byte, 4)
	payload := make([]byte, 65520)
	for {
		if _, err := io.ReadFull(stream, header); err != nil {
			return nil, status.Errorf(codes.Canceled, "read pkt header: %v", err)
		}
		n, err := strconv.ParseUint(string(header), 16, 16)
		if err != nil || n > 65520 {
			return nil, status.Errorf(codes.InvalidArgument, "invalid pkt header %q", header)
		}
		if n == 0 {
			break
		}
		if n < 4 {
			return nil, status.Errorf(codes.InvalidArgument, "sidechannel: invalid header %d", n)
		}
		data := payload[:n-4]
		if _, err := io.ReadFull(stream, data); err != nil {
			return nil, status.Errorf(codes.Canceled, "read pkt: %v", err)
		}
		hash.Write(data)
		total += int64(len(data))
		if _, err := stream.Write(data); err != nil {
			return nil, status.Errorf(codes.Canceled, "write echo: %v", err)
		}
	}
	if err := stream.Close(); err != nil {
		return nil, status.Errorf(codes.Internal, "close sidechannel: %v", err)
	}
	stats.note(func(s *serverStats) { s.bytes += total })
	resp := make([]byte, 40)
	copy(resp, hash.Sum(nil))
	binary.BigEndian.PutUint64(resp[32:], uint64(total))
	return resp, nil
}

// ---- client (Workhorse's role) ----

type registry struct {
	mu      sync.Mutex
	next    int64
	waiters map[int64]chan *yamux.Stream
}

func (r *registry) register() (int64, chan *yamux.Stream) {
	r.mu.Lock()
	defer r.mu.Unlock()
	id := r.next
	r.next++
	ch := make(chan *yamux.Stream, 1)
	r.waiters[id] = ch
	return id, ch
}

func (r *registry) receive(id int64, stream *yamux.Stream) error {
	r.mu.Lock()
	ch, ok := r.waiters[id]
	delete(r.waiters, id)
	r.mu.Unlock()
	if !ok {
		stream.Close()
		return errors.New("sidechannel registry: ID not registered")
	}
	ch <- stream
	return nil
}

// dispatch routes a server-opened stream by its first 11 bytes.
func dispatch(stream *yamux.Stream, reg *registry) {
	magic, err := ioutil.ReadAll(io.LimitReader(stream, 11))
	if err != nil || string(magic) != magicSidechannel {
		stream.Close() // this client serves no backchannel gRPC
		return
	}
	var id int64
	if err := binary.Read(stream, binary.BigEndian, &id); err != nil {
		stream.Close()
		return
	}
	if err := reg.receive(id, stream); err != nil {
		log.Print(err)
	}
}

type callReport struct {
	Sent      string  `json:"sha256Sent"`
	Echoed    string  `json:"sha256Echoed"`
	Server    string  `json:"sha256Server"`
	Bytes     int64   `json:"bytes"`
	Seconds   float64 `json:"seconds"`
	MiBPerSec float64 `json:"mibPerSec"`
}

// sidechannelCall runs one call: the waiter's callback writes framed PRNG bytes and
// "0000" while reading the raw echo to EOF.
func sidechannelCall(ctx context.Context, cc *grpc.ClientConn, reg *registry, size int64, seed uint32) (callReport, error) {
	start := time.Now()
	id, accept := reg.register()
	type outcome struct {
		sent, echoed []byte
		n            int64
		err          error
	}
	done := make(chan outcome, 1)
	go func() {
		var stream *yamux.Stream
		select {
		case stream = <-accept:
		case <-ctx.Done():
			done <- outcome{err: errors.New("sidechannel: callback de-registered without having run")}
			return
		}
		defer stream.Close()
		stream.SetWriteDeadline(time.Now().Add(5 * time.Second))
		if _, err := stream.Write([]byte("ok")); err != nil {
			done <- outcome{err: fmt.Errorf("write ok: %w", err)}
			return
		}
		stream.SetWriteDeadline(time.Time{})
		writeErr := make(chan error, 1)
		sentHash := sha256.New()
		go func() {
			gen := prng.New(size, seed)
			buf := make([]byte, 128<<10)
			header := make([]byte, 4)
			for !gen.Done() {
				n := gen.Fill(buf)
				sentHash.Write(buf[:n])
				for off := 0; off < n; off += maxChunk {
					end := off + maxChunk
					if end > n {
						end = n
					}
					copy(header, fmt.Sprintf("%04x", end-off+4))
					if _, err := stream.Write(header); err != nil {
						writeErr <- err
						return
					}
					if _, err := stream.Write(buf[off:end]); err != nil {
						writeErr <- err
						return
					}
				}
			}
			_, err := stream.Write([]byte("0000"))
			writeErr <- err
		}()
		echoHash := sha256.New()
		n, err := io.Copy(echoHash, stream)
		if err == nil {
			err = <-writeErr
		}
		done <- outcome{sent: sentHash.Sum(nil), echoed: echoHash.Sum(nil), n: n, err: err}
	}()
	callCtx := metadata.AppendToOutgoingContext(ctx, idMetadata, strconv.FormatInt(id, 10))
	var resp []byte
	req := []byte{}
	if err := cc.Invoke(callCtx, echoMethod, &req, &resp, grpc.CallContentSubtype("raw")); err != nil {
		return callReport{}, fmt.Errorf("rpc: %w", err)
	}
	out := <-done
	if out.err != nil {
		return callReport{}, fmt.Errorf("sidechannel: %w", out.err)
	}
	seconds := time.Since(start).Seconds()
	report := callReport{
		Sent: hex.EncodeToString(out.sent), Echoed: hex.EncodeToString(out.echoed), Bytes: out.n,
		Seconds: seconds, MiBPerSec: float64(size) / (1 << 20) / seconds,
	}
	if len(resp) == 40 {
		report.Server = hex.EncodeToString(resp[:32])
		if got := int64(binary.BigEndian.Uint64(resp[32:])); got != size {
			return report, fmt.Errorf("server received %d bytes, want %d", got, size)
		}
	} else {
		return report, fmt.Errorf("response of %d bytes, want 40", len(resp))
	}
	if report.Sent != report.Echoed || report.Sent != report.Server || out.n != size {
		return report, fmt.Errorf("mismatch: sent %s echoed %s (%d bytes) server %s", report.Sent, report.Echoed, out.n, report.Server)
	}
	return report, nil
}

func runClient(target string, size int64, calls int) {
	conn, err := net.Dial("tcp", target)
	if err != nil {
		fail("client", err)
	}
	if _, err := conn.Write([]byte(magicBackchannel)); err != nil {
		fail("client", fmt.Errorf("write backchannel magic bytes: %w", err))
	}
	session, err := yamux.Client(conn, yamuxConfig(256, 256<<10))
	if err != nil {
		fail("client", err)
	}
	stream1, err := session.Open()
	if err != nil {
		fail("client", fmt.Errorf("open client stream: %w", err))
	}
	reg := &registry{waiters: map[int64]chan *yamux.Stream{}}
	go func() {
		for {
			stream, err := session.AcceptStream()
			if err != nil {
				return
			}
			go dispatch(stream, reg)
		}
	}()
	var dialed sync.Once
	cc, err := grpc.Dial("passthrough:///backchannel", grpc.WithInsecure(), grpc.WithContextDialer(
		func(context.Context, string) (net.Conn, error) {
			var c net.Conn = nil
			dialed.Do(func() { c = stream1 })
			if c == nil {
				return nil, errors.New("stream 1 is gone")
			}
			return c, nil
		}))
	if err != nil {
		fail("client", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	start := time.Now()
	reports := make([]callReport, calls)
	errs := make([]error, calls)
	var wg sync.WaitGroup
	for i := 0; i < calls; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			reports[i], errs[i] = sidechannelCall(ctx, cc, reg, size, uint32(i+1))
		}(i)
	}
	wg.Wait()
	seconds := time.Since(start).Seconds()
	cc.Close()
	session.Close()
	for i, err := range errs {
		if err != nil {
			emit(result{"ok": false, "mode": "client", "error": fmt.Sprintf("call %d: %v", i, err), "calls": reports})
		}
	}
	emit(result{
		"ok": true, "mode": "client", "calls": reports, "seconds": seconds,
		"mibPerSec": float64(size*int64(calls)) / (1 << 20) / seconds,
	})
}
