package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"sidechanneltest/prng"
	"sort"
	"strings"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
)

// Interop constants (grpc's interop test descriptions).
var (
	reqSizes              = []int32{27182, 8, 1828, 45904}
	respSizes             = []int32{31415, 9, 2653, 58979}
	largeReqSize    int32 = 271828
	largeRespSize   int32 = 314159
	initialMDValue        = "test_initial_metadata_value"
	trailingMDValue       = "\x0a\x0b\x0a\x0b\x0a\x0b"
	statusMessage         = "test status message"
	specialMessage        = "\t\ntest with whitespace\r\nand Unicode BMP ☺ and non-BMP 😈\t\n"
)

const (
	testService = "/grpc.testing.TestService/"
	rawService  = "/raw.Raw/"
)

// interopCases are the standard cases in the order "all" runs them.
var interopCases = []string{
	"empty_unary", "large_unary", "client_streaming", "server_streaming", "ping_pong", "empty_stream",
	"timeout_on_sleeping_server", "cancel_after_begin", "cancel_after_first_response",
	"status_code_and_message", "special_status_message", "custom_metadata",
	"unimplemented_method", "unimplemented_service",
}

// rawCases are the raw-codec cases "all-raw" runs.
var rawCases = []string{"raw-echo", "raw-pull", "raw-push", "raw-bidi", "deadline", "cancel", "metadata"}

type client struct {
	conn     *grpc.ClientConn
	o        *options
	rawOpts  []grpc.CallOption
	deadline time.Duration
}

type caseResult map[string]interface{}

func (c *client) run(ctx context.Context, name string) (caseResult, error) {
	switch name {
	case "empty_unary":
		return c.emptyUnary(ctx)
	case "large_unary":
		return c.largeUnary(ctx)
	case "client_streaming":
		return c.clientStreaming(ctx)
	case "server_streaming":
		return c.serverStreaming(ctx)
	case "ping_pong":
		return c.pingPong(ctx)
	case "empty_stream":
		return c.emptyStream(ctx)
	case "timeout_on_sleeping_server":
		return c.timeoutOnSleepingServer(ctx)
	case "cancel_after_begin":
		return c.cancelAfterBegin(ctx)
	case "cancel_after_first_response":
		return c.cancelAfterFirstResponse(ctx)
	case "status_code_and_message":
		return c.statusCodeAndMessage(ctx, statusMessage)
	case "special_status_message":
		return c.statusCodeAndMessage(ctx, specialMessage)
	case "custom_metadata":
		return c.customMetadata(ctx)
	case "unimplemented_method":
		return c.unimplemented(ctx, testService+"UnimplementedCall")
	case "unimplemented_service":
		return c.unimplemented(ctx, "/grpc.testing.UnimplementedService/UnimplementedCall")
	case "half_duplex":
		return c.halfDuplex(ctx)
	case "raw-echo":
		return c.rawEcho(ctx)
	case "raw-pull":
		return c.rawPull(ctx)
	case "raw-push":
		return c.rawPush(ctx)
	case "raw-bidi":
		return c.rawBidi(ctx)
	case "deadline":
		return c.rawDeadline(ctx)
	case "cancel":
		return c.rawCancel(ctx)
	case "metadata":
		return c.rawMetadata(ctx)
	}
	return nil, fmt.Errorf("unknown -test_case %q", name)
}

func wantCode(err error, code codes.Code, what string) error {
	if got := status.Code(err); got != code {
		return fmt.Errorf("%s: want status %v, got %v (%v)", what, code, got, err)
	}
	return nil
}

func payloadOf(size int32) *Payload { return &Payload{Body: make([]byte, size)} }

func checkPayload(p *Payload, size int32, what string) error {
	got := 0
	if p != nil {
		got = len(p.Body)
	}
	if int32(got) != size {
		return fmt.Errorf("%s: payload of %d bytes, want %d", what, got, size)
	}
	if p != nil && p.Type != 0 {
		return fmt.Errorf("%s: payload type %d, want COMPRESSABLE (0)", what, p.Type)
	}
	return nil
}

func (c *client) emptyUnary(ctx context.Context) (caseResult, error) {
	return nil, c.conn.Invoke(ctx, testService+"EmptyCall", &Empty{}, &Empty{})
}

func (c *client) largeUnary(ctx context.Context) (caseResult, error) {
	req := &SimpleRequest{ResponseSize: largeRespSize, Payload: payloadOf(largeReqSize)}
	resp := &SimpleResponse{}
	if err := c.conn.Invoke(ctx, testService+"UnaryCall", req, resp); err != nil {
		return nil, err
	}
	return nil, checkPayload(resp.Payload, largeRespSize, "UnaryCall")
}

var (
	clientStreamDesc = &grpc.StreamDesc{ClientStreams: true}
	serverStreamDesc = &grpc.StreamDesc{ServerStreams: true}
	bidiStreamDesc   = &grpc.StreamDesc{ClientStreams: true, ServerStreams: true}
)

func (c *client) clientStreaming(ctx context.Context) (caseResult, error) {
	cs, err := c.conn.NewStream(ctx, clientStreamDesc, testService+"StreamingInputCall")
	if err != nil {
		return nil, err
	}
	var sum int32
	for _, n := range reqSizes {
		if err := cs.SendMsg(&StreamingInputCallRequest{Payload: payloadOf(n)}); err != nil {
			return nil, fmt.Errorf("send: %w", err)
		}
		sum += n
	}
	if err := cs.CloseSend(); err != nil {
		return nil, err
	}
	resp := &StreamingInputCallResponse{}
	if err := cs.RecvMsg(resp); err != nil {
		return nil, err
	}
	if resp.AggregatedPayloadSize != sum {
		return nil, fmt.Errorf("aggregated_payload_size %d, want %d", resp.AggregatedPayloadSize, sum)
	}
	return caseResult{"aggregatedPayloadSize": resp.AggregatedPayloadSize}, nil
}

func responseParams(sizes ...int32) []*ResponseParameters {
	out := make([]*ResponseParameters, len(sizes))
	for i, s := range sizes {
		out[i] = &ResponseParameters{Size: s}
	}
	return out
}

func (c *client) serverStreaming(ctx context.Context) (caseResult, error) {
	cs, err := c.conn.NewStream(ctx, serverStreamDesc, testService+"StreamingOutputCall")
	if err != nil {
		return nil, err
	}
	if err := cs.SendMsg(&StreamingOutputCallRequest{ResponseParameters: responseParams(respSizes...)}); err != nil {
		return nil, err
	}
	if err := cs.CloseSend(); err != nil {
		return nil, err
	}
	for i, want := range respSizes {
		resp := &StreamingOutputCallResponse{}
		if err := cs.RecvMsg(resp); err != nil {
			return nil, fmt.Errorf("response %d: %w", i, err)
		}
		if err := checkPayload(resp.Payload, want, fmt.Sprintf("response %d", i)); err != nil {
			return nil, err
		}
	}
	if err := cs.RecvMsg(&StreamingOutputCallResponse{}); err != io.EOF {
		return nil, fmt.Errorf("after %d responses: want EOF, got %v", len(respSizes), err)
	}
	return caseResult{"responses": len(respSizes)}, nil
}

func (c *client) pingPong(ctx context.Context) (caseResult, error) {
	cs, err := c.conn.NewStream(ctx, bidiStreamDesc, testService+"FullDuplexCall")
	if err != nil {
		return nil, err
	}
	for i := range reqSizes {
		req := &StreamingOutputCallRequest{ResponseParameters: responseParams(respSizes[i]), Payload: payloadOf(reqSizes[i])}
		if err := cs.SendMsg(req); err != nil {
			return nil, fmt.Errorf("send %d: %w", i, err)
		}
		resp := &StreamingOutputCallResponse{}
		if err := cs.RecvMsg(resp); err != nil {
			return nil, fmt.Errorf("recv %d: %w", i, err)
		}
		if err := checkPayload(resp.Payload, respSizes[i], fmt.Sprintf("response %d", i)); err != nil {
			return nil, err
		}
	}
	if err := cs.CloseSend(); err != nil {
		return nil, err
	}
	if err := cs.RecvMsg(&StreamingOutputCallResponse{}); err != io.EOF {
		return nil, fmt.Errorf("after the last response: want EOF, got %v", err)
	}
	return caseResult{"exchanges": len(reqSizes)}, nil
}

// halfDuplex (not a standard case): HalfDuplexCall answers only after the
// client's half-close.
func (c *client) halfDuplex(ctx context.Context) (caseResult, error) {
	cs, err := c.conn.NewStream(ctx, bidiStreamDesc, testService+"HalfDuplexCall")
	if err != nil {
		return nil, err
	}
	for i := range reqSizes {
		req := &StreamingOutputCallRequest{ResponseParameters: responseParams(respSizes[i]), Payload: payloadOf(reqSizes[i])}
		if err := cs.SendMsg(req); err != nil {
			return nil, fmt.Errorf("send %d: %w", i, err)
		}
	}
	if err := cs.CloseSend(); err != nil {
		return nil, err
	}
	for i, want := range respSizes {
		resp := &StreamingOutputCallResponse{}
		if err := cs.RecvMsg(resp); err != nil {
			return nil, fmt.Errorf("response %d: %w", i, err)
		}
		if err := checkPayload(resp.Payload, want, fmt.Sprintf("response %d", i)); err != nil {
			return nil, err
		}
	}
	if err := cs.RecvMsg(&StreamingOutputCallResponse{}); err != io.EOF {
		return nil, fmt.Errorf("after the last response: want EOF, got %v", err)
	}
	return caseResult{"responses": len(respSizes)}, nil
}

func (c *client) emptyStream(ctx context.Context) (caseResult, error) {
	cs, err := c.conn.NewStream(ctx, bidiStreamDesc, testService+"FullDuplexCall")
	if err != nil {
		return nil, err
	}
	if err := cs.CloseSend(); err != nil {
		return nil, err
	}
	if err := cs.RecvMsg(&StreamingOutputCallResponse{}); err != io.EOF {
		return nil, fmt.Errorf("want EOF, got %v", err)
	}
	return nil, nil
}

func (c *client) timeoutOnSleepingServer(ctx context.Context) (caseResult, error) {
	ctx, cancel := context.WithTimeout(ctx, time.Millisecond)
	defer cancel()
	cs, err := c.conn.NewStream(ctx, bidiStreamDesc, testService+"FullDuplexCall")
	if err != nil {
		// The deadline may already have passed when the stream is created.
		return caseResult{"failedAt": "NewStream"}, wantCode(err, codes.DeadlineExceeded, "NewStream")
	}
	req := &StreamingOutputCallRequest{Payload: payloadOf(27182)}
	if err := cs.SendMsg(req); err != nil && err != io.EOF && status.Code(err) != codes.DeadlineExceeded {
		return nil, fmt.Errorf("send: %w", err)
	}
	err = cs.RecvMsg(&StreamingOutputCallResponse{})
	return caseResult{"status": status.Code(err).String()}, wantCode(err, codes.DeadlineExceeded, "Recv")
}

func (c *client) cancelAfterBegin(ctx context.Context) (caseResult, error) {
	ctx, cancel := context.WithCancel(ctx)
	cs, err := c.conn.NewStream(ctx, clientStreamDesc, testService+"StreamingInputCall")
	if err != nil {
		cancel()
		return nil, err
	}
	cancel()
	err = cs.RecvMsg(&StreamingInputCallResponse{})
	return caseResult{"status": status.Code(err).String()}, wantCode(err, codes.Canceled, "CloseAndRecv")
}

func (c *client) cancelAfterFirstResponse(ctx context.Context) (caseResult, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	cs, err := c.conn.NewStream(ctx, bidiStreamDesc, testService+"FullDuplexCall")
	if err != nil {
		return nil, err
	}
	req := &StreamingOutputCallRequest{ResponseParameters: responseParams(31415), Payload: payloadOf(27182)}
	if err := cs.SendMsg(req); err != nil {
		return nil, err
	}
	if err := cs.RecvMsg(&StreamingOutputCallResponse{}); err != nil {
		return nil, err
	}
	cancel()
	err = cs.RecvMsg(&StreamingOutputCallResponse{})
	return caseResult{"status": status.Code(err).String()}, wantCode(err, codes.Canceled, "Recv after cancel")
}

func wantStatus(err error, code codes.Code, msg, what string) error {
	st, _ := status.FromError(err)
	if st.Code() != code || st.Message() != msg {
		return fmt.Errorf("%s: want status %v %q, got %v %q", what, code, msg, st.Code(), st.Message())
	}
	return nil
}

func (c *client) statusCodeAndMessage(ctx context.Context, msg string) (caseResult, error) {
	echo := &EchoStatus{Code: int32(codes.Unknown), Message: msg}
	err := c.conn.Invoke(ctx, testService+"UnaryCall", &SimpleRequest{ResponseStatus: echo}, &SimpleResponse{})
	if err := wantStatus(err, codes.Unknown, msg, "UnaryCall"); err != nil {
		return nil, err
	}
	cs, err := c.conn.NewStream(ctx, bidiStreamDesc, testService+"FullDuplexCall")
	if err != nil {
		return nil, err
	}
	if err := cs.SendMsg(&StreamingOutputCallRequest{ResponseStatus: echo}); err != nil && err != io.EOF {
		return nil, err
	}
	if err := cs.CloseSend(); err != nil {
		return nil, err
	}
	err = cs.RecvMsg(&StreamingOutputCallResponse{})
	return nil, wantStatus(err, codes.Unknown, msg, "FullDuplexCall")
}

func checkEchoedMetadata(header, trailer metadata.MD, what string) error {
	if got := header.Get(initialMetadataKey); len(got) != 1 || got[0] != initialMDValue {
		return fmt.Errorf("%s: header %s = %q, want [%q]", what, initialMetadataKey, got, initialMDValue)
	}
	if got := trailer.Get(trailingMetadataKey); len(got) != 1 || got[0] != trailingMDValue {
		return fmt.Errorf("%s: trailer %s = %q, want [%q]", what, trailingMetadataKey, got, trailingMDValue)
	}
	return nil
}

func withEchoMetadata(ctx context.Context) context.Context {
	return metadata.AppendToOutgoingContext(ctx, initialMetadataKey, initialMDValue, trailingMetadataKey, trailingMDValue)
}

func (c *client) customMetadata(ctx context.Context) (caseResult, error) {
	ctx = withEchoMetadata(ctx)
	var header, trailer metadata.MD
	req := &SimpleRequest{ResponseSize: largeRespSize, Payload: payloadOf(largeReqSize)}
	resp := &SimpleResponse{}
	if err := c.conn.Invoke(ctx, testService+"UnaryCall", req, resp, grpc.Header(&header), grpc.Trailer(&trailer)); err != nil {
		return nil, err
	}
	if err := checkPayload(resp.Payload, largeRespSize, "UnaryCall"); err != nil {
		return nil, err
	}
	if err := checkEchoedMetadata(header, trailer, "UnaryCall"); err != nil {
		return nil, err
	}
	cs, err := c.conn.NewStream(ctx, bidiStreamDesc, testService+"FullDuplexCall")
	if err != nil {
		return nil, err
	}
	sreq := &StreamingOutputCallRequest{ResponseParameters: responseParams(largeRespSize), Payload: payloadOf(largeReqSize)}
	if err := cs.SendMsg(sreq); err != nil {
		return nil, err
	}
	sresp := &StreamingOutputCallResponse{}
	if err := cs.RecvMsg(sresp); err != nil {
		return nil, err
	}
	if err := checkPayload(sresp.Payload, largeRespSize, "FullDuplexCall"); err != nil {
		return nil, err
	}
	if err := cs.CloseSend(); err != nil {
		return nil, err
	}
	if err := cs.RecvMsg(&StreamingOutputCallResponse{}); err != io.EOF {
		return nil, fmt.Errorf("FullDuplexCall: want EOF, got %v", err)
	}
	sheader, err := cs.Header()
	if err != nil {
		return nil, err
	}
	return nil, checkEchoedMetadata(sheader, cs.Trailer(), "FullDuplexCall")
}

func (c *client) unimplemented(ctx context.Context, method string) (caseResult, error) {
	err := c.conn.Invoke(ctx, method, &Empty{}, &Empty{})
	return caseResult{"status": status.Code(err).String()}, wantCode(err, codes.Unimplemented, method)
}

// ---- raw cases ----

func sum256(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

func prngBytes(n int64, seed uint32) []byte {
	b := make([]byte, n)
	prng.New(n, seed).Fill(b)
	return b
}

func (c *client) rawEcho(ctx context.Context) (caseResult, error) {
	in := prngBytes(c.o.bytes, 1)
	var out []byte
	start := time.Now()
	if err := c.conn.Invoke(ctx, rawService+"Echo", &in, &out, c.rawOpts...); err != nil {
		return nil, err
	}
	res := caseResult{"bytes": len(out), "sha256": sum256(out), "seconds": time.Since(start).Seconds()}
	if !bytes.Equal(in, out) {
		return res, fmt.Errorf("echo differs: sent %d bytes, got %d", len(in), len(out))
	}
	return res, nil
}

func rates(n int64, d time.Duration) caseResult {
	s := d.Seconds()
	if s <= 0 {
		return caseResult{"seconds": s}
	}
	return caseResult{"seconds": s, "mbPerSec": float64(n) / 1e6 / s, "mibPerSec": float64(n) / (1 << 20) / s}
}

func (c *client) rawPull(ctx context.Context) (caseResult, error) {
	cs, err := c.conn.NewStream(ctx, serverStreamDesc, rawService+"Pull", c.rawOpts...)
	if err != nil {
		return nil, err
	}
	req := make([]byte, 8)
	binary.BigEndian.PutUint64(req, uint64(c.o.bytes))
	start := time.Now()
	if err := cs.SendMsg(&req); err != nil {
		return nil, err
	}
	if err := cs.CloseSend(); err != nil {
		return nil, err
	}
	h := sha256.New()
	var total int64
	messages := 0
	for {
		var msg []byte
		err := cs.RecvMsg(&msg)
		if err == io.EOF {
			break
		}
		if err != nil {
			return caseResult{"bytes": total}, err
		}
		total += int64(len(msg))
		messages++
		if c.o.verify {
			h.Write(msg)
		}
	}
	res := rates(total, time.Since(start))
	res["bytes"] = total
	res["messages"] = messages
	if !c.o.verify {
		if total != c.o.bytes {
			return res, fmt.Errorf("pulled %d bytes, want %d", total, c.o.bytes)
		}
		return res, nil
	}
	res["sha256"] = hex.EncodeToString(h.Sum(nil))
	want := newHashedPRNG(c.o.bytes, 1)
	if total != c.o.bytes || res["sha256"] != want {
		return res, fmt.Errorf("pulled %d bytes (sha256 %s), want %d (%s)", total, res["sha256"], c.o.bytes, want)
	}
	return res, nil
}

func newHashedPRNG(n int64, seed uint32) string {
	h := sha256.New()
	gen := prng.New(n, seed)
	buf := make([]byte, 64<<10)
	for !gen.Done() {
		h.Write(buf[:gen.Fill(buf)])
	}
	return hex.EncodeToString(h.Sum(nil))
}

func (c *client) rawPush(ctx context.Context) (caseResult, error) {
	cs, err := c.conn.NewStream(ctx, clientStreamDesc, rawService+"Push", c.rawOpts...)
	if err != nil {
		return nil, err
	}
	gen := prng.New(c.o.bytes, 1)
	h := sha256.New()
	start := time.Now()
	for !gen.Done() {
		buf := make([]byte, c.o.chunk)
		buf = buf[:gen.Fill(buf)]
		if c.o.verify {
			h.Write(buf)
		}
		if err := cs.SendMsg(&buf); err != nil {
			return nil, fmt.Errorf("send: %w", err)
		}
	}
	if err := cs.CloseSend(); err != nil {
		return nil, err
	}
	var reply []byte
	if err := cs.RecvMsg(&reply); err != nil {
		return nil, err
	}
	res := rates(c.o.bytes, time.Since(start))
	if len(reply) != 40 {
		return res, fmt.Errorf("Push reply of %d bytes, want 40", len(reply))
	}
	total := int64(binary.BigEndian.Uint64(reply))
	res["bytes"] = total
	res["sha256"] = hex.EncodeToString(reply[8:])
	if total != c.o.bytes {
		return res, fmt.Errorf("server got %d bytes, sent %d", total, c.o.bytes)
	}
	if want := hex.EncodeToString(h.Sum(nil)); c.o.verify && res["sha256"] != want {
		return res, fmt.Errorf("server's sha256 %s, sent %s", res["sha256"], want)
	}
	return res, nil
}

func (c *client) rawBidi(ctx context.Context) (caseResult, error) {
	cs, err := c.conn.NewStream(ctx, bidiStreamDesc, rawService+"Bidi", c.rawOpts...)
	if err != nil {
		return nil, err
	}
	sent := sha256.New()
	start := time.Now()
	sendErr := make(chan error, 1)
	go func() {
		gen := prng.New(c.o.bytes, 1)
		for !gen.Done() {
			buf := make([]byte, c.o.chunk)
			buf = buf[:gen.Fill(buf)]
			if c.o.verify {
				sent.Write(buf)
			}
			if err := cs.SendMsg(&buf); err != nil {
				sendErr <- fmt.Errorf("send: %w", err)
				return
			}
		}
		sendErr <- cs.CloseSend()
	}()
	recv := sha256.New()
	var total int64
	messages := 0
	for {
		var msg []byte
		err := cs.RecvMsg(&msg)
		if err == io.EOF {
			break
		}
		if err != nil {
			return caseResult{"bytes": total}, err
		}
		total += int64(len(msg))
		messages++
		if c.o.verify {
			recv.Write(msg)
		}
	}
	if err := <-sendErr; err != nil {
		return nil, err
	}
	res := rates(total, time.Since(start))
	res["bytes"] = total
	res["messages"] = messages
	if !c.o.verify {
		if total != c.o.bytes {
			return res, fmt.Errorf("echoed %d bytes, sent %d", total, c.o.bytes)
		}
		return res, nil
	}
	res["sha256"] = hex.EncodeToString(recv.Sum(nil))
	if want := hex.EncodeToString(sent.Sum(nil)); total != c.o.bytes || res["sha256"] != want {
		return res, fmt.Errorf("echoed %d bytes (sha256 %s), sent %d (%s)", total, res["sha256"], c.o.bytes, want)
	}
	return res, nil
}

// rawDeadline: a Bidi call with a short deadline that echoes one message and then
// idles must end with DEADLINE_EXCEEDED.
func (c *client) rawDeadline(ctx context.Context) (caseResult, error) {
	ctx, cancel := context.WithTimeout(ctx, c.deadline)
	defer cancel()
	start := time.Now()
	cs, err := c.conn.NewStream(ctx, bidiStreamDesc, rawService+"Bidi", c.rawOpts...)
	if err != nil {
		return nil, err
	}
	msg := []byte("before the deadline")
	if err := cs.SendMsg(&msg); err != nil {
		return nil, err
	}
	var echo []byte
	if err := cs.RecvMsg(&echo); err != nil {
		return nil, fmt.Errorf("echo before the deadline: %w", err)
	}
	err = cs.RecvMsg(&echo)
	res := caseResult{"status": status.Code(err).String(), "afterMs": float64(time.Since(start)) / 1e6}
	return res, wantCode(err, codes.DeadlineExceeded, "Recv after the deadline")
}

// rawCancel: cancelling a Bidi call after one echo must end it with CANCELLED.
func (c *client) rawCancel(ctx context.Context) (caseResult, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	cs, err := c.conn.NewStream(ctx, bidiStreamDesc, rawService+"Bidi", c.rawOpts...)
	if err != nil {
		return nil, err
	}
	msg := []byte("before cancel")
	if err := cs.SendMsg(&msg); err != nil {
		return nil, err
	}
	var echo []byte
	if err := cs.RecvMsg(&echo); err != nil {
		return nil, err
	}
	cancel()
	err = cs.RecvMsg(&echo)
	return caseResult{"status": status.Code(err).String()}, wantCode(err, codes.Canceled, "Recv after cancel")
}

// rawMetadata: Echo echoes x-grpc-test-echo-initial as a header and
// x-grpc-test-echo-trailing-bin (binary) as a trailer.
func (c *client) rawMetadata(ctx context.Context) (caseResult, error) {
	ctx = withEchoMetadata(ctx)
	var header, trailer metadata.MD
	in := []byte("metadata")
	var out []byte
	opts := append([]grpc.CallOption{grpc.Header(&header), grpc.Trailer(&trailer)}, c.rawOpts...)
	if err := c.conn.Invoke(ctx, rawService+"Echo", &in, &out, opts...); err != nil {
		return nil, err
	}
	keys := make([]string, 0, len(header))
	for k := range header {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	res := caseResult{"headerKeys": strings.Join(keys, ",")}
	if !bytes.Equal(in, out) {
		return res, errors.New("echo differs")
	}
	return res, checkEchoedMetadata(header, trailer, "Echo")
}
