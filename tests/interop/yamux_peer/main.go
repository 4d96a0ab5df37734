// Command yamux_peer is a hashicorp/yamux test peer for sidechannel's interop tests.
//
// It speaks yamux over one loopback TCP connection, either listening
// (-listen 127.0.0.1:0 prints "LISTEN <port>" first) or dialing (-connect), with
// the yamux role chosen independently (-yamux client|server). It prints exactly
// one JSON line on stdout at the end ({"ok":true,...} or {"ok":false,"error":...})
// and exits 0 or 1. Logs of hashicorp/yamux go to stderr.
//
// Built in GOPATH mode against Debian's golang-github-hashicorp-yamux-dev
// (0.0+git20190923.df201c7). See README.md beside this file for the modes.
package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"time"

	"github.com/hashicorp/yamux"
)

type options struct {
	mode              string
	listen            string
	connect           string
	role              string
	streams           int
	bytes             int64
	count             int
	chunk             int
	window            uint
	keepalive         bool
	keepaliveInterval time.Duration
	backlog           int
	writeTimeout      time.Duration
	readRate          float64
	timeout           time.Duration
	halfClose         string
	dir               string
	opener            string
	hold              time.Duration
	hash              bool
}

// result is the JSON line printed at the end.
type result map[string]interface{}

func main() {
	var o options
	flag.StringVar(&o.mode, "mode", "", "echo-server | echo-client | sink | source | ping | rst | goaway | accept-and-hold | idle")
	flag.StringVar(&o.listen, "listen", "", "listen on this address (127.0.0.1:0) and serve one connection; prints LISTEN <port>")
	flag.StringVar(&o.connect, "connect", "", "dial this address (127.0.0.1:PORT)")
	flag.StringVar(&o.role, "yamux", "", "yamux role: client (odd stream ids) or server (even); default: client if dialing, server if listening")
	flag.IntVar(&o.streams, "streams", 1, "streams to open (echo-client, source); streams to finish before exiting (echo-server, sink; 0 = until the peer closes)")
	flag.Int64Var(&o.bytes, "bytes", 1<<20, "bytes per stream (echo-client, source, rst, goaway)")
	flag.IntVar(&o.count, "count", 100, "pings (ping)")
	flag.IntVar(&o.chunk, "chunk", 64<<10, "write size in bytes")
	flag.UintVar(&o.window, "window", 256<<10, "MaxStreamWindowSize in bytes (>= 262144)")
	flag.BoolVar(&o.keepalive, "keepalive", true, "EnableKeepAlive")
	flag.DurationVar(&o.keepaliveInterval, "keepalive-interval", 30*time.Second, "KeepAliveInterval")
	flag.IntVar(&o.backlog, "backlog", 256, "AcceptBacklog (also caps our un-ACKed outbound SYNs)")
	flag.DurationVar(&o.writeTimeout, "write-timeout", 10*time.Second, "ConnectionWriteTimeout (also the ping timeout)")
	flag.Float64Var(&o.readRate, "read-rate", 0, "limit each stream's reader to this many MiB/s (echo-server, sink; 0 = unlimited)")
	flag.DurationVar(&o.timeout, "timeout", 60*time.Second, "give up (ok:false) after this long")
	flag.StringVar(&o.halfClose, "half-close", "raw", "how echo-client/goaway end their writes: raw (inject a FIN frame, keep reading: a true half-close), close (Stream.Close(), then read: the 2019 snapshot returns EOF early), none (read the whole echo, then Close())")
	flag.StringVar(&o.dir, "dir", "send", "rst/goaway: send (this peer resets / sends GoAway) or recv (the other peer does)")
	flag.StringVar(&o.opener, "opener", "go", "rst: which side opens the stream that gets reset: go (this peer) or peer")
	flag.BoolVar(&o.hash, "hash", true, "sha256 the data (sink, source); -hash=false for throughput runs")
	flag.DurationVar(&o.hold, "hold", 0, "accept-and-hold/idle: also stop after this long (0 = until the peer closes)")
	flag.Parse()

	res, err := run(&o)
	if res == nil {
		res = result{}
	}
	res["mode"] = o.mode
	if err != nil {
		res["ok"] = false
		res["error"] = err.Error()
	} else if _, set := res["ok"]; !set {
		res["ok"] = true
	}
	line, jerr := json.Marshal(res)
	if jerr != nil {
		line = []byte(fmt.Sprintf(`{"ok":false,"mode":%q,"error":%q}`, o.mode, jerr.Error()))
	}
	fmt.Println(string(line))
	if ok, _ := res["ok"].(bool); !ok {
		os.Exit(1)
	}
}

func run(o *options) (result, error) {
	if o.mode == "" {
		return nil, errors.New("missing -mode")
	}
	if (o.listen == "") == (o.connect == "") {
		return nil, errors.New("give exactly one of -listen and -connect")
	}
	for _, addr := range []string{o.listen, o.connect} {
		if addr != "" && !strings.HasPrefix(addr, "127.0.0.1:") && !strings.HasPrefix(addr, "[::1]:") {
			return nil, fmt.Errorf("only loopback addresses are allowed, got %q", addr)
		}
	}
	if o.role == "" {
		if o.connect != "" {
			o.role = "client"
		} else {
			o.role = "server"
		}
	}
	if o.role != "client" && o.role != "server" {
		return nil, fmt.Errorf("-yamux must be client or server, got %q", o.role)
	}
	if o.chunk <= 0 {
		return nil, errors.New("-chunk must be positive")
	}

	conn, err := dialOrAccept(o)
	if err != nil {
		return nil, err
	}
	fc := newFrameConn(conn)

	cfg := yamux.DefaultConfig()
	cfg.AcceptBacklog = o.backlog
	cfg.EnableKeepAlive = o.keepalive
	cfg.KeepAliveInterval = o.keepaliveInterval
	cfg.ConnectionWriteTimeout = o.writeTimeout
	cfg.MaxStreamWindowSize = uint32(o.window)
	cfg.LogOutput = os.Stderr
	var sess *yamux.Session
	if o.role == "client" {
		sess, err = yamux.Client(fc, cfg)
	} else {
		sess, err = yamux.Server(fc, cfg)
	}
	if err != nil {
		conn.Close()
		return nil, err
	}

	p := &peer{o: o, sess: sess, fc: fc}
	type outcome struct {
		res result
		err error
	}
	done := make(chan outcome, 1)
	go func() {
		r, err := p.runMode()
		done <- outcome{r, err}
	}()
	var out outcome
	select {
	case out = <-done:
	case <-time.After(o.timeout):
		out = outcome{result{"stage": p.stage()}, fmt.Errorf("timed out after %v", o.timeout)}
		sess.Close()
	}
	if out.res == nil {
		out.res = result{}
	}
	out.res["role"] = o.role
	out.res["frames"] = fc.stats()
	sess.Close()
	return out.res, out.err
}

func dialOrAccept(o *options) (net.Conn, error) {
	if o.connect != "" {
		return net.DialTimeout("tcp", o.connect, 10*time.Second)
	}
	ln, err := net.Listen("tcp", o.listen)
	if err != nil {
		return nil, err
	}
	defer ln.Close()
	fmt.Printf("LISTEN %d\n", ln.Addr().(*net.TCPAddr).Port)
	if tl, ok := ln.(*net.TCPListener); ok {
		tl.SetDeadline(time.Now().Add(o.timeout))
	}
	return ln.Accept()
}

// gracefulClose ends the TCP connection without a RST: half-close our side, wait
// (briefly) for the peer to close its side, which ends the session's reader.
func (p *peer) gracefulClose() {
	p.fc.closeWrite()
	select {
	case <-p.sess.CloseChan():
	case <-time.After(3 * time.Second):
	}
	p.sess.Close()
}

// waitSessionEnd waits until the peer ends the session (or limit passes, if > 0).
func (p *peer) waitSessionEnd(limit time.Duration) bool {
	var timer <-chan time.Time
	if limit > 0 {
		timer = time.After(limit)
	}
	select {
	case <-p.sess.CloseChan():
		return true
	case <-timer:
		return false
	}
}

// readAllLimited reads until EOF or error, pacing to rateMiBps when > 0.
func readAllLimited(r io.Reader, buf []byte, rateMiBps float64, sink func([]byte)) (int64, error) {
	var total int64
	start := time.Now()
	for {
		n, err := r.Read(buf)
		if n > 0 {
			total += int64(n)
			sink(buf[:n])
			if rateMiBps > 0 {
				due := time.Duration(float64(total) / (rateMiBps * (1 << 20)) * float64(time.Second))
				if ahead := due - time.Since(start); ahead > 0 {
					time.Sleep(ahead)
				}
			}
		}
		if err == io.EOF {
			return total, nil
		}
		if err != nil {
			return total, err
		}
	}
}

func errText(err error) interface{} {
	if err == nil {
		return nil
	}
	return err.Error()
}
