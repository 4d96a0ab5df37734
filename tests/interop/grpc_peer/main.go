// Command grpc_peer is a grpc-go (Debian's 1.33) test peer for sidechannel's
// interop tests: a server with grpc.testing.TestService and a raw-bytes service
// (raw.Raw), and a client that runs grpc's standard interop cases and raw cases.
//
// There is no protoc here: the messages are encoded by a small hand-written
// protobuf codec (proto.go) registered as grpc-go's "proto" codec, and raw
// []byte messages use a pass-through codec. See README.md beside this file.
//
// Server: prints "LISTEN <port>", serves until SIGTERM/SIGINT (or -serve-for),
// then prints one JSON line with the calls it served. Client: prints one JSON line
// ({"ok":true,...} / {"ok":false,"error":...}), exit status 0 iff the case passed.
package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"errors"
	"flag"
	"fmt"
	"io/ioutil"
	"math/big"
	"net"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/encoding"
	"google.golang.org/grpc/status"
)

func init() {
	// Registered after grpc's own encoding/proto (imported by grpc), so ours wins.
	encoding.RegisterCodec(protoCodec{})
	encoding.RegisterCodec(rawCodec{})
}

type options struct {
	mode       string
	listen     string
	target     string
	testCase   string
	useTLS     bool
	certOut    string
	certFile   string
	keyFile    string
	caFile     string
	window     int
	connWindow int
	maxMsg     int
	chunk      int
	bytes      int64
	subtype    string
	deadline   time.Duration
	timeout    time.Duration
	serveFor   time.Duration
	verify     bool
}

type result map[string]interface{}

func main() {
	var o options
	flag.StringVar(&o.mode, "mode", "", "server | client")
	flag.StringVar(&o.listen, "listen", "127.0.0.1:0", "server: listen address (loopback only); prints LISTEN <port>")
	flag.StringVar(&o.target, "target", "", "client: server address 127.0.0.1:PORT")
	flag.StringVar(&o.testCase, "test_case", "", "client: an interop case ("+strings.Join(interopCases, ", ")+"), half_duplex, a raw case ("+strings.Join(rawCases, ", ")+"), all (interop cases) or all-raw; comma-separated lists work too")
	flag.BoolVar(&o.useTLS, "tls", false, "use TLS (server: self-signed certificate for 127.0.0.1/localhost; client: trust -ca)")
	flag.StringVar(&o.certOut, "cert-out", "", "server with -tls: write the certificate (PEM) here")
	flag.StringVar(&o.certFile, "cert-file", "", "server with -tls: serve this PEM certificate (with -key-file) instead of a fresh self-signed one")
	flag.StringVar(&o.keyFile, "key-file", "", "server with -tls: the PEM private key of -cert-file")
	flag.StringVar(&o.caFile, "ca", "", "client with -tls: PEM certificate to trust")
	flag.IntVar(&o.window, "window", 0, "HTTP/2 initial stream window (InitialWindowSize); 0 = grpc-go's default (dynamic)")
	flag.IntVar(&o.connWindow, "conn-window", 0, "HTTP/2 connection window (InitialConnWindowSize); 0 = default")
	flag.IntVar(&o.maxMsg, "max-msg", 64<<20, "max message size, both directions")
	flag.IntVar(&o.chunk, "chunk", 64<<10, "raw message size (Pull replies, Push/Bidi requests)")
	flag.Int64Var(&o.bytes, "bytes", 1<<20, "client raw cases: bytes to move (raw-echo: message size)")
	flag.StringVar(&o.subtype, "subtype", "", "client raw cases: empty = ForceCodec (content-type application/grpc), raw = application/grpc+raw")
	flag.DurationVar(&o.deadline, "deadline", 200*time.Millisecond, "client deadline case: the call's deadline")
	flag.DurationVar(&o.timeout, "timeout", 60*time.Second, "client: deadline for the whole run (connect + case)")
	flag.BoolVar(&o.verify, "verify", true, "client raw-pull/raw-push/raw-bidi: sha256 the data (-verify=false for throughput: Go 1.19's sha256 does ~350 MiB/s)")
	flag.DurationVar(&o.serveFor, "serve-for", 10*time.Minute, "server: stop after this long even without a signal")
	flag.Parse()

	var res result
	var err error
	switch o.mode {
	case "server":
		res, err = runServer(&o)
	case "client":
		res, err = runClient(&o)
	default:
		err = fmt.Errorf("-mode must be server or client, got %q", o.mode)
	}
	if res == nil {
		res = result{}
	}
	res["mode"] = o.mode
	if err != nil {
		res["ok"] = false
		res["error"] = err.Error()
		if st, ok := status.FromError(err); ok {
			res["status"] = st.Code().String()
		}
	} else {
		res["ok"] = true
	}
	line, jerr := json.Marshal(res)
	if jerr != nil {
		line = []byte(fmt.Sprintf(`{"ok":false,"mode":%q,"error":%q}`, o.mode, jerr.Error()))
	}
	fmt.Println(string(line))
	if err != nil {
		os.Exit(1)
	}
}

func loopbackOnly(addr string) error {
	if !strings.HasPrefix(addr, "127.0.0.1:") && !strings.HasPrefix(addr, "[::1]:") && !strings.HasPrefix(addr, "localhost:") {
		return fmt.Errorf("only loopback addresses are allowed, got %q", addr)
	}
	return nil
}

func runServer(o *options) (result, error) {
	if err := loopbackOnly(o.listen); err != nil {
		return nil, err
	}
	opts := []grpc.ServerOption{grpc.MaxRecvMsgSize(o.maxMsg), grpc.MaxSendMsgSize(o.maxMsg)}
	if o.window > 0 {
		opts = append(opts, grpc.InitialWindowSize(int32(o.window)))
	}
	if o.connWindow > 0 {
		opts = append(opts, grpc.InitialConnWindowSize(int32(o.connWindow)))
	}
	if o.useTLS {
		cert, certPEM, err := serverCert(o)
		if err != nil {
			return nil, err
		}
		if o.certOut != "" {
			if err := ioutil.WriteFile(o.certOut, certPEM, 0o644); err != nil {
				return nil, err
			}
		}
		opts = append(opts, grpc.Creds(credentials.NewServerTLSFromCert(&cert)))
	}
	srv := &server{chunk: o.chunk, calls: map[string]int{}}
	gs := grpc.NewServer(opts...)
	gs.RegisterService(&testServiceDesc, srv)
	gs.RegisterService(&rawServiceDesc, srv)

	ln, err := net.Listen("tcp", o.listen)
	if err != nil {
		return nil, err
	}
	fmt.Printf("LISTEN %d\n", ln.Addr().(*net.TCPAddr).Port)

	serveErr := make(chan error, 1)
	go func() { serveErr <- gs.Serve(ln) }()
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT)
	var stopReason string
	select {
	case sig := <-sigs:
		stopReason = sig.String()
	case <-time.After(o.serveFor):
		stopReason = "serve-for elapsed"
	case err := <-serveErr:
		return result{"calls": srv.callCounts()}, fmt.Errorf("serve: %w", err)
	}
	stopped := make(chan struct{})
	go func() {
		gs.GracefulStop()
		close(stopped)
	}()
	select {
	case <-stopped:
	case <-time.After(2 * time.Second):
		gs.Stop()
	}
	return result{"calls": srv.callCounts(), "stopped": stopReason, "tls": o.useTLS, "services": describeServices()}, nil
}

// serverCert loads -cert-file/-key-file, or makes a self-signed certificate. (The
// self-signed one is its own CA, which rustls clients such as Deno's reject as an end
// entity; they need a CA-issued leaf like tests/fixtures/http2/cert.pem.)
func serverCert(o *options) (tls.Certificate, []byte, error) {
	if o.certFile == "" {
		return selfSignedCert()
	}
	certPEM, err := ioutil.ReadFile(o.certFile)
	if err != nil {
		return tls.Certificate{}, nil, err
	}
	keyPEM, err := ioutil.ReadFile(o.keyFile)
	if err != nil {
		return tls.Certificate{}, nil, err
	}
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	return cert, certPEM, err
}

func selfSignedCert() (tls.Certificate, []byte, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(time.Now().UnixNano()),
		Subject:               pkix.Name{CommonName: "grpc_peer test server"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
		IPAddresses:           []net.IP{net.ParseIP("127.0.0.1"), net.ParseIP("::1")},
		DNSNames:              []string{"localhost"},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return tls.Certificate{}, nil, err
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return tls.Certificate{}, nil, err
	}
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	keyPEM := pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER})
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	return cert, certPEM, err
}

func runClient(o *options) (result, error) {
	if err := loopbackOnly(o.target); err != nil {
		return nil, err
	}
	if o.testCase == "" {
		return nil, errors.New("missing -test_case")
	}
	ctx, cancel := context.WithTimeout(context.Background(), o.timeout)
	defer cancel()

	dialOpts := []grpc.DialOption{
		grpc.WithBlock(),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(o.maxMsg), grpc.MaxCallSendMsgSize(o.maxMsg)),
	}
	if o.window > 0 {
		dialOpts = append(dialOpts, grpc.WithInitialWindowSize(int32(o.window)))
	}
	if o.connWindow > 0 {
		dialOpts = append(dialOpts, grpc.WithInitialConnWindowSize(int32(o.connWindow)))
	}
	if o.useTLS {
		if o.caFile == "" {
			return nil, errors.New("-tls needs -ca")
		}
		pemBytes, err := ioutil.ReadFile(o.caFile)
		if err != nil {
			return nil, err
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pemBytes) {
			return nil, fmt.Errorf("no certificate in %s", o.caFile)
		}
		dialOpts = append(dialOpts, grpc.WithTransportCredentials(credentials.NewClientTLSFromCert(pool, "")))
	} else {
		dialOpts = append(dialOpts, grpc.WithInsecure())
	}
	dialCtx, dialCancel := context.WithTimeout(ctx, 10*time.Second)
	conn, err := grpc.DialContext(dialCtx, o.target, dialOpts...)
	dialCancel()
	if err != nil {
		return nil, fmt.Errorf("dial %s: %w", o.target, err)
	}
	defer conn.Close()

	c := &client{conn: conn, o: o, deadline: o.deadline}
	if o.subtype == "" {
		c.rawOpts = []grpc.CallOption{grpc.ForceCodec(rawCodec{})}
	} else {
		c.rawOpts = []grpc.CallOption{grpc.CallContentSubtype(o.subtype)}
	}

	var names []string
	for _, n := range strings.Split(o.testCase, ",") {
		switch n {
		case "all":
			names = append(names, interopCases...)
		case "all-raw":
			names = append(names, rawCases...)
		default:
			names = append(names, n)
		}
	}
	res := result{"testCase": o.testCase, "target": o.target, "tls": o.useTLS}
	if len(names) == 1 {
		start := time.Now()
		details, err := c.run(ctx, names[0])
		for k, v := range details {
			res[k] = v
		}
		res["ms"] = float64(time.Since(start)) / 1e6
		return res, err
	}
	cases := make([]result, 0, len(names))
	var failed []string
	for _, name := range names {
		start := time.Now()
		details, err := c.run(ctx, name)
		r := result{"testCase": name, "ok": err == nil, "ms": float64(time.Since(start)) / 1e6}
		for k, v := range details {
			r[k] = v
		}
		if err != nil {
			r["error"] = err.Error()
			failed = append(failed, name)
		}
		cases = append(cases, r)
	}
	res["cases"] = cases
	if len(failed) > 0 {
		return res, fmt.Errorf("%d of %d cases failed: %s", len(failed), len(names), strings.Join(failed, ", "))
	}
	return res, nil
}
