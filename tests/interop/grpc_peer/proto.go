package main

// A tiny protobuf wire codec for the grpc.testing messages (there is no protoc
// here). Field numbers are those of grpc's public messages.proto / empty.proto.

import (
	"errors"
	"fmt"
	"math"
)

const (
	wireVarint  = 0
	wireFixed64 = 1
	wireBytes   = 2
	wireFixed32 = 5
)

type pbWriter struct{ b []byte }

func (w *pbWriter) varint(v uint64) {
	for v >= 0x80 {
		w.b = append(w.b, byte(v)|0x80)
		v >>= 7
	}
	w.b = append(w.b, byte(v))
}

func (w *pbWriter) tag(field, wire int) { w.varint(uint64(field)<<3 | uint64(wire)) }

// int32 fields: negative values are sign-extended to 10 bytes, as protobuf does.
func (w *pbWriter) int32(field int, v int32) {
	if v != 0 {
		w.tag(field, wireVarint)
		w.varint(uint64(int64(v)))
	}
}

func (w *pbWriter) bool(field int, v bool) {
	if v {
		w.tag(field, wireVarint)
		w.varint(1)
	}
}

func (w *pbWriter) bytes(field int, v []byte) {
	if len(v) > 0 {
		w.tag(field, wireBytes)
		w.varint(uint64(len(v)))
		w.b = append(w.b, v...)
	}
}

func (w *pbWriter) string(field int, v string) { w.bytes(field, []byte(v)) }

// message writes a sub-message; present (non-nil) messages are written even when empty.
func (w *pbWriter) message(field int, m message) {
	var sub pbWriter
	m.marshal(&sub)
	w.tag(field, wireBytes)
	w.varint(uint64(len(sub.b)))
	w.b = append(w.b, sub.b...)
}

var errTruncated = errors.New("proto: truncated message")

type pbReader struct{ b []byte }

func (r *pbReader) varint() (uint64, error) {
	var v uint64
	for i := 0; i < 10; i++ {
		if len(r.b) == 0 {
			return 0, errTruncated
		}
		c := r.b[0]
		r.b = r.b[1:]
		v |= uint64(c&0x7f) << (7 * uint(i))
		if c < 0x80 {
			return v, nil
		}
	}
	return 0, errors.New("proto: varint overflow")
}

// next returns the next field number, wire type and, for wireBytes, the payload;
// for wireVarint the value is in v. Fixed-size fields are skipped (v = 0).
func (r *pbReader) next() (field int, wire int, v uint64, payload []byte, err error) {
	key, err := r.varint()
	if err != nil {
		return 0, 0, 0, nil, err
	}
	field, wire = int(key>>3), int(key&7)
	if field <= 0 || key>>3 > math.MaxInt32 {
		return 0, 0, 0, nil, fmt.Errorf("proto: bad field number %d", key>>3)
	}
	switch wire {
	case wireVarint:
		v, err = r.varint()
	case wireFixed64:
		if len(r.b) < 8 {
			return 0, 0, 0, nil, errTruncated
		}
		r.b = r.b[8:]
	case wireFixed32:
		if len(r.b) < 4 {
			return 0, 0, 0, nil, errTruncated
		}
		r.b = r.b[4:]
	case wireBytes:
		var n uint64
		n, err = r.varint()
		if err == nil && n > uint64(len(r.b)) {
			err = errTruncated
		}
		if err == nil {
			payload = r.b[:n]
			r.b = r.b[n:]
		}
	default:
		err = fmt.Errorf("proto: unsupported wire type %d", wire)
	}
	return field, wire, v, payload, err
}

// each calls fn for every field of b.
func each(b []byte, fn func(field, wire int, v uint64, payload []byte) error) error {
	r := pbReader{b}
	for len(r.b) > 0 {
		field, wire, v, payload, err := r.next()
		if err != nil {
			return err
		}
		if err := fn(field, wire, v, payload); err != nil {
			return err
		}
	}
	return nil
}

type message interface {
	marshal(w *pbWriter)
	unmarshal(b []byte) error
}

// grpc.testing.Empty
type Empty struct{}

func (m *Empty) marshal(w *pbWriter)      {}
func (m *Empty) unmarshal(b []byte) error { return each(b, skip) }

func skip(int, int, uint64, []byte) error { return nil }

// grpc.testing.Payload: type = 1 (enum PayloadType, COMPRESSABLE = 0), body = 2.
type Payload struct {
	Type int32
	Body []byte
}

func (m *Payload) marshal(w *pbWriter) {
	w.int32(1, m.Type)
	w.bytes(2, m.Body)
}

func (m *Payload) unmarshal(b []byte) error {
	return each(b, func(f, wt int, v uint64, p []byte) error {
		switch {
		case f == 1 && wt == wireVarint:
			m.Type = int32(v)
		case f == 2 && wt == wireBytes:
			m.Body = p
		}
		return nil
	})
}

// grpc.testing.EchoStatus: code = 1, message = 2.
type EchoStatus struct {
	Code    int32
	Message string
}

func (m *EchoStatus) marshal(w *pbWriter) {
	w.int32(1, m.Code)
	w.string(2, m.Message)
}

func (m *EchoStatus) unmarshal(b []byte) error {
	return each(b, func(f, wt int, v uint64, p []byte) error {
		switch {
		case f == 1 && wt == wireVarint:
			m.Code = int32(v)
		case f == 2 && wt == wireBytes:
			m.Message = string(p)
		}
		return nil
	})
}

// grpc.testing.BoolValue: value = 1.
type BoolValue struct{ Value bool }

func (m *BoolValue) marshal(w *pbWriter) { w.bool(1, m.Value) }
func (m *BoolValue) unmarshal(b []byte) error {
	return each(b, func(f, wt int, v uint64, p []byte) error {
		if f == 1 && wt == wireVarint {
			m.Value = v != 0
		}
		return nil
	})
}

func subMessage(p []byte, m message) error { return m.unmarshal(p) }

// grpc.testing.SimpleRequest: response_type = 1, response_size = 2, payload = 3,
// fill_username = 4, fill_oauth_scope = 5, response_compressed = 6,
// response_status = 7, expect_compressed = 8, fill_server_id = 9.
type SimpleRequest struct {
	ResponseType       int32
	ResponseSize       int32
	Payload            *Payload
	FillUsername       bool
	FillOauthScope     bool
	ResponseCompressed *BoolValue
	ResponseStatus     *EchoStatus
	ExpectCompressed   *BoolValue
	FillServerID       bool
}

func (m *SimpleRequest) marshal(w *pbWriter) {
	w.int32(1, m.ResponseType)
	w.int32(2, m.ResponseSize)
	if m.Payload != nil {
		w.message(3, m.Payload)
	}
	w.bool(4, m.FillUsername)
	w.bool(5, m.FillOauthScope)
	if m.ResponseCompressed != nil {
		w.message(6, m.ResponseCompressed)
	}
	if m.ResponseStatus != nil {
		w.message(7, m.ResponseStatus)
	}
	if m.ExpectCompressed != nil {
		w.message(8, m.ExpectCompressed)
	}
	w.bool(9, m.FillServerID)
}

func (m *SimpleRequest) unmarshal(b []byte) error {
	return each(b, func(f, wt int, v uint64, p []byte) error {
		switch {
		case f == 1 && wt == wireVarint:
			m.ResponseType = int32(v)
		case f == 2 && wt == wireVarint:
			m.ResponseSize = int32(v)
		case f == 3 && wt == wireBytes:
			m.Payload = &Payload{}
			return subMessage(p, m.Payload)
		case f == 4 && wt == wireVarint:
			m.FillUsername = v != 0
		case f == 5 && wt == wireVarint:
			m.FillOauthScope = v != 0
		case f == 6 && wt == wireBytes:
			m.ResponseCompressed = &BoolValue{}
			return subMessage(p, m.ResponseCompressed)
		case f == 7 && wt == wireBytes:
			m.ResponseStatus = &EchoStatus{}
			return subMessage(p, m.ResponseStatus)
		case f == 8 && wt == wireBytes:
			m.ExpectCompressed = &BoolValue{}
			return subMessage(p, m.ExpectCompressed)
		case f == 9 && wt == wireVarint:
			m.FillServerID = v != 0
		}
		return nil
	})
}

// grpc.testing.SimpleResponse: payload = 1, username = 2, oauth_scope = 3,
// server_id = 4, grpclb_route_type = 5, hostname = 6.
type SimpleResponse struct {
	Payload    *Payload
	Username   string
	OauthScope string
	ServerID   string
	Hostname   string
}

func (m *SimpleResponse) marshal(w *pbWriter) {
	if m.Payload != nil {
		w.message(1, m.Payload)
	}
	w.string(2, m.Username)
	w.string(3, m.OauthScope)
	w.string(4, m.ServerID)
	w.string(6, m.Hostname)
}

func (m *SimpleResponse) unmarshal(b []byte) error {
	return each(b, func(f, wt int, v uint64, p []byte) error {
		switch {
		case f == 1 && wt == wireBytes:
			m.Payload = &Payload{}
			return subMessage(p, m.Payload)
		case f == 2 && wt == wireBytes:
			m.Username = string(p)
		case f == 3 && wt == wireBytes:
			m.OauthScope = string(p)
		case f == 4 && wt == wireBytes:
			m.ServerID = string(p)
		case f == 6 && wt == wireBytes:
			m.Hostname = string(p)
		}
		return nil
	})
}

// grpc.testing.StreamingInputCallRequest: payload = 1, expect_compressed = 2.
type StreamingInputCallRequest struct {
	Payload          *Payload
	ExpectCompressed *BoolValue
}

func (m *StreamingInputCallRequest) marshal(w *pbWriter) {
	if m.Payload != nil {
		w.message(1, m.Payload)
	}
	if m.ExpectCompressed != nil {
		w.message(2, m.ExpectCompressed)
	}
}

func (m *StreamingInputCallRequest) unmarshal(b []byte) error {
	return each(b, func(f, wt int, v uint64, p []byte) error {
		switch {
		case f == 1 && wt == wireBytes:
			m.Payload = &Payload{}
			return subMessage(p, m.Payload)
		case f == 2 && wt == wireBytes:
			m.ExpectCompressed = &BoolValue{}
			return subMessage(p, m.ExpectCompressed)
		}
		return nil
	})
}

// grpc.testing.StreamingInputCallResponse: aggregated_payload_size = 1.
type StreamingInputCallResponse struct{ AggregatedPayloadSize int32 }

func (m *StreamingInputCallResponse) marshal(w *pbWriter) { w.int32(1, m.AggregatedPayloadSize) }
func (m *StreamingInputCallResponse) unmarshal(b []byte) error {
	return each(b, func(f, wt int, v uint64, p []byte) error {
		if f == 1 && wt == wireVarint {
			m.AggregatedPayloadSize = int32(v)
		}
		return nil
	})
}

// grpc.testing.ResponseParameters: size = 1, interval_us = 2, compressed = 3.
type ResponseParameters struct {
	Size       int32
	IntervalUs int32
	Compressed *BoolValue
}

func (m *ResponseParameters) marshal(w *pbWriter) {
	w.int32(1, m.Size)
	w.int32(2, m.IntervalUs)
	if m.Compressed != nil {
		w.message(3, m.Compressed)
	}
}

func (m *ResponseParameters) unmarshal(b []byte) error {
	return each(b, func(f, wt int, v uint64, p []byte) error {
		switch {
		case f == 1 && wt == wireVarint:
			m.Size = int32(v)
		case f == 2 && wt == wireVarint:
			m.IntervalUs = int32(v)
		case f == 3 && wt == wireBytes:
			m.Compressed = &BoolValue{}
			return subMessage(p, m.Compressed)
		}
		return nil
	})
}

// grpc.testing.StreamingOutputCallRequest: response_type = 1,
// response_parameters = 2 (repeated), payload = 3, response_status = 7.
type StreamingOutputCallRequest struct {
	ResponseType       int32
	ResponseParameters []*ResponseParameters
	Payload            *Payload
	ResponseStatus     *EchoStatus
}

func (m *StreamingOutputCallRequest) marshal(w *pbWriter) {
	w.int32(1, m.ResponseType)
	for _, rp := range m.ResponseParameters {
		w.message(2, rp)
	}
	if m.Payload != nil {
		w.message(3, m.Payload)
	}
	if m.ResponseStatus != nil {
		w.message(7, m.ResponseStatus)
	}
}

func (m *StreamingOutputCallRequest) unmarshal(b []byte) error {
	return each(b, func(f, wt int, v uint64, p []byte) error {
		switch {
		case f == 1 && wt == wireVarint:
			m.ResponseType = int32(v)
		case f == 2 && wt == wireBytes:
			rp := &ResponseParameters{}
			m.ResponseParameters = append(m.ResponseParameters, rp)
			return subMessage(p, rp)
		case f == 3 && wt == wireBytes:
			m.Payload = &Payload{}
			return subMessage(p, m.Payload)
		case f == 7 && wt == wireBytes:
			m.ResponseStatus = &EchoStatus{}
			return subMessage(p, m.ResponseStatus)
		}
		return nil
	})
}

// grpc.testing.StreamingOutputCallResponse: payload = 1.
type StreamingOutputCallResponse struct{ Payload *Payload }

func (m *StreamingOutputCallResponse) marshal(w *pbWriter) {
	if m.Payload != nil {
		w.message(1, m.Payload)
	}
}

func (m *StreamingOutputCallResponse) unmarshal(b []byte) error {
	return each(b, func(f, wt int, v uint64, p []byte) error {
		if f == 1 && wt == wireBytes {
			m.Payload = &Payload{}
			return subMessage(p, m.Payload)
		}
		return nil
	})
}

// protoCodec replaces grpc-go's registered "proto" codec: it encodes the
// messages above and passes []byte / *[]byte through unchanged (raw service).
type protoCodec struct{}

func (protoCodec) Name() string { return "proto" }

func (protoCodec) Marshal(v interface{}) ([]byte, error) {
	switch m := v.(type) {
	case message:
		var w pbWriter
		m.marshal(&w)
		return w.b, nil
	case *[]byte:
		return *m, nil
	case []byte:
		return m, nil
	}
	return nil, fmt.Errorf("proto codec: cannot marshal %T", v)
}

func (protoCodec) Unmarshal(data []byte, v interface{}) error {
	switch m := v.(type) {
	case message:
		return m.unmarshal(data)
	case *[]byte:
		// grpc-go 1.33 allocates a fresh buffer per received message.
		*m = data
		return nil
	}
	return fmt.Errorf("proto codec: cannot unmarshal into %T", v)
}

// rawCodec is registered as "raw" (content-type application/grpc+raw) and used
// with grpc.ForceCodec: messages are the bytes themselves.
type rawCodec struct{}

func (rawCodec) Name() string { return "raw" }

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
	*m = data
	return nil
}
