package main

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"io"
	"sidechanneltest/prng"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
)

const (
	initialMetadataKey  = "x-grpc-test-echo-initial"
	trailingMetadataKey = "x-grpc-test-echo-trailing-bin"
)

// server implements grpc.testing.TestService and raw.Raw by hand-written
// service descriptors (no generated code).
type server struct {
	chunk int

	mu    sync.Mutex
	calls map[string]int
}

func (s *server) count(method string) {
	s.mu.Lock()
	s.calls[method]++
	s.mu.Unlock()
}

func (s *server) callCounts() map[string]int {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(map[string]int, len(s.calls))
	for k, v := range s.calls {
		out[k] = v
	}
	return out
}

// echoMetadata copies the interop echo keys from the request metadata into the
// response headers and trailers.
func echoMetadata(ctx context.Context, setHeader, setTrailer func(metadata.MD) error) error {
	md, _ := metadata.FromIncomingContext(ctx)
	if v := md.Get(initialMetadataKey); len(v) > 0 {
		if err := setHeader(metadata.MD{initialMetadataKey: v}); err != nil {
			return err
		}
	}
	if v := md.Get(trailingMetadataKey); len(v) > 0 {
		if err := setTrailer(metadata.MD{trailingMetadataKey: v}); err != nil {
			return err
		}
	}
	return nil
}

func unaryMetadata(ctx context.Context) error {
	return echoMetadata(ctx,
		func(md metadata.MD) error { return grpc.SetHeader(ctx, md) },
		func(md metadata.MD) error { return grpc.SetTrailer(ctx, md) })
}

func streamMetadata(ss grpc.ServerStream) error {
	return echoMetadata(ss.Context(), ss.SetHeader, func(md metadata.MD) error {
		ss.SetTrailer(md)
		return nil
	})
}

func echoStatus(st *EchoStatus) error {
	if st == nil || st.Code == 0 {
		return nil
	}
	return status.Error(codes.Code(st.Code), st.Message)
}

func newPayload(size int32) (*Payload, error) {
	if size < 0 {
		return nil, status.Errorf(codes.InvalidArgument, "negative payload size %d", size)
	}
	return &Payload{Type: 0, Body: make([]byte, size)}, nil
}

func sleepMicros(ctx context.Context, us int32) error {
	if us <= 0 {
		return nil
	}
	t := time.NewTimer(time.Duration(us) * time.Microsecond)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return status.FromContextError(ctx.Err()).Err()
	}
}

func unary(name string, newReq func() interface{}, fn func(s *server, ctx context.Context, req interface{}) (interface{}, error)) grpc.MethodDesc {
	return grpc.MethodDesc{
		MethodName: name,
		Handler: func(srv interface{}, ctx context.Context, dec func(interface{}) error, _ grpc.UnaryServerInterceptor) (interface{}, error) {
			s := srv.(*server)
			s.count(name)
			req := newReq()
			if err := dec(req); err != nil {
				return nil, err
			}
			return fn(s, ctx, req)
		},
	}
}

func streaming(name string, clientStreams, serverStreams bool, fn func(s *server, ss grpc.ServerStream) error) grpc.StreamDesc {
	return grpc.StreamDesc{
		StreamName:    name,
		ClientStreams: clientStreams,
		ServerStreams: serverStreams,
		Handler: func(srv interface{}, ss grpc.ServerStream) error {
			s := srv.(*server)
			s.count(name)
			return fn(s, ss)
		},
	}
}

var testServiceDesc = grpc.ServiceDesc{
	ServiceName: "grpc.testing.TestService",
	HandlerType: (*interface{})(nil),
	Methods: []grpc.MethodDesc{
		unary("EmptyCall", func() interface{} { return &Empty{} },
			func(s *server, ctx context.Context, req interface{}) (interface{}, error) {
				if err := unaryMetadata(ctx); err != nil {
					return nil, err
				}
				return &Empty{}, nil
			}),
		unary("UnaryCall", func() interface{} { return &SimpleRequest{} },
			func(s *server, ctx context.Context, r interface{}) (interface{}, error) {
				req := r.(*SimpleRequest)
				if err := unaryMetadata(ctx); err != nil {
					return nil, err
				}
				if err := echoStatus(req.ResponseStatus); err != nil {
					return nil, err
				}
				pl, err := newPayload(req.ResponseSize)
				if err != nil {
					return nil, err
				}
				return &SimpleResponse{Payload: pl}, nil
			}),
		unary("UnimplementedCall", func() interface{} { return &Empty{} },
			func(s *server, ctx context.Context, req interface{}) (interface{}, error) {
				return nil, status.Error(codes.Unimplemented, "grpc.testing.TestService/UnimplementedCall is not implemented")
			}),
	},
	Streams: []grpc.StreamDesc{
		streaming("StreamingOutputCall", false, true, func(s *server, ss grpc.ServerStream) error {
			req := &StreamingOutputCallRequest{}
			if err := ss.RecvMsg(req); err != nil {
				return err
			}
			if err := streamMetadata(ss); err != nil {
				return err
			}
			if err := sendResponses(ss, req); err != nil {
				return err
			}
			return echoStatus(req.ResponseStatus)
		}),
		streaming("StreamingInputCall", true, false, func(s *server, ss grpc.ServerStream) error {
			if err := streamMetadata(ss); err != nil {
				return err
			}
			var sum int32
			for {
				req := &StreamingInputCallRequest{}
				err := ss.RecvMsg(req)
				if err == io.EOF {
					return ss.SendMsg(&StreamingInputCallResponse{AggregatedPayloadSize: sum})
				}
				if err != nil {
					return err
				}
				if req.Payload != nil {
					sum += int32(len(req.Payload.Body))
				}
			}
		}),
		streaming("FullDuplexCall", true, true, func(s *server, ss grpc.ServerStream) error {
			if err := streamMetadata(ss); err != nil {
				return err
			}
			for {
				req := &StreamingOutputCallRequest{}
				err := ss.RecvMsg(req)
				if err == io.EOF {
					return nil
				}
				if err != nil {
					return err
				}
				if err := echoStatus(req.ResponseStatus); err != nil {
					return err
				}
				if err := sendResponses(ss, req); err != nil {
					return err
				}
			}
		}),
		streaming("HalfDuplexCall", true, true, func(s *server, ss grpc.ServerStream) error {
			if err := streamMetadata(ss); err != nil {
				return err
			}
			var reqs []*StreamingOutputCallRequest
			for {
				req := &StreamingOutputCallRequest{}
				err := ss.RecvMsg(req)
				if err == io.EOF {
					break
				}
				if err != nil {
					return err
				}
				reqs = append(reqs, req)
			}
			for _, req := range reqs {
				if err := echoStatus(req.ResponseStatus); err != nil {
					return err
				}
				if err := sendResponses(ss, req); err != nil {
					return err
				}
			}
			return nil
		}),
	},
}

func sendResponses(ss grpc.ServerStream, req *StreamingOutputCallRequest) error {
	for _, rp := range req.ResponseParameters {
		if err := sleepMicros(ss.Context(), rp.IntervalUs); err != nil {
			return err
		}
		pl, err := newPayload(rp.Size)
		if err != nil {
			return err
		}
		if err := ss.SendMsg(&StreamingOutputCallResponse{Payload: pl}); err != nil {
			return err
		}
	}
	return nil
}

// raw.Raw: methods on plain bytes (the proto codec passes *[]byte through).
var rawServiceDesc = grpc.ServiceDesc{
	ServiceName: "raw.Raw",
	HandlerType: (*interface{})(nil),
	Methods: []grpc.MethodDesc{
		// Echo: the reply is the request.
		unary("Echo", func() interface{} { return new([]byte) },
			func(s *server, ctx context.Context, r interface{}) (interface{}, error) {
				if err := unaryMetadata(ctx); err != nil {
					return nil, err
				}
				return r, nil
			}),
	},
	Streams: []grpc.StreamDesc{
		// Pull: the request is an 8-byte big-endian length N; the reply is N bytes of
		// pseudoRandomBytes(N, 1) in -chunk byte messages.
		streaming("Pull", false, true, func(s *server, ss grpc.ServerStream) error {
			var req []byte
			if err := ss.RecvMsg(&req); err != nil {
				return err
			}
			if len(req) != 8 {
				return status.Errorf(codes.InvalidArgument, "Pull wants an 8-byte length, got %d bytes", len(req))
			}
			if err := streamMetadata(ss); err != nil {
				return err
			}
			n := binary.BigEndian.Uint64(req)
			if n > 1<<40 {
				return status.Errorf(codes.InvalidArgument, "Pull length %d too large", n)
			}
			gen := prng.New(int64(n), 1)
			for !gen.Done() {
				buf := make([]byte, s.chunk)
				m := gen.Fill(buf)
				buf = buf[:m]
				if err := ss.SendMsg(&buf); err != nil {
					return err
				}
			}
			return nil
		}),
		// Push: client streaming; the reply is the 8-byte big-endian total followed by
		// the 32-byte sha256 of everything received.
		streaming("Push", true, false, func(s *server, ss grpc.ServerStream) error {
			if err := streamMetadata(ss); err != nil {
				return err
			}
			h := sha256.New()
			var total uint64
			for {
				var msg []byte
				err := ss.RecvMsg(&msg)
				if err == io.EOF {
					break
				}
				if err != nil {
					return err
				}
				total += uint64(len(msg))
				h.Write(msg)
			}
			out := make([]byte, 8, 40)
			binary.BigEndian.PutUint64(out, total)
			out = h.Sum(out)
			return ss.SendMsg(&out)
		}),
		// Bidi: every message is echoed as it arrives.
		streaming("Bidi", true, true, func(s *server, ss grpc.ServerStream) error {
			if err := streamMetadata(ss); err != nil {
				return err
			}
			for {
				var msg []byte
				err := ss.RecvMsg(&msg)
				if err == io.EOF {
					return nil
				}
				if err != nil {
					return err
				}
				if err := ss.SendMsg(&msg); err != nil {
					return err
				}
			}
		}),
	},
}

func describeServices() []string {
	var out []string
	for _, sd := range []*grpc.ServiceDesc{&testServiceDesc, &rawServiceDesc} {
		for _, m := range sd.Methods {
			out = append(out, fmt.Sprintf("/%s/%s", sd.ServiceName, m.MethodName))
		}
		for _, st := range sd.Streams {
			out = append(out, fmt.Sprintf("/%s/%s", sd.ServiceName, st.StreamName))
		}
	}
	return out
}
