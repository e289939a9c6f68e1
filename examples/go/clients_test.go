package main

// Tests of Tessera as grpc-go and connect-go users call it, with the dial options and call
// options they commonly set. They need a running Tessera: .ci/go-example starts one and runs
// `go test` with TESSERA_ADDR, TESSERA_CLIENT_ID, TESSERA_ADMIN_TOKEN and
// TESSERA_IDLE_TIMEOUT_MS set (and TESSERA_CA_FILE, the certificate to trust, for an https://
// address: TLS); without TESSERA_ADDR every test is skipped.

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"connectrpc.com/connect"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/encoding/gzip"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/grpc/metadata"
	reflectionpb "google.golang.org/grpc/reflection/grpc_reflection_v1"
	reflectionv1alphapb "google.golang.org/grpc/reflection/grpc_reflection_v1alpha"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protodesc"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/descriptorpb"

	apitokenv1 "tessera/gen/go/tessera/apitoken/v1"
	"tessera/gen/go/tessera/apitoken/v1/apitokenv1connect"
	jwtv1 "tessera/gen/go/tessera/jwt/v1"
	"tessera/gen/go/tessera/jwt/v1/jwtv1connect"
)

type target struct {
	addr, host, clientID, adminToken string
	idle                             time.Duration
	// The certificate to trust over TLS (nil: h2c).
	roots *x509.CertPool
}

func tessera(t *testing.T) target {
	t.Helper()
	addr := os.Getenv("TESSERA_ADDR")
	if addr == "" {
		t.Skip("TESSERA_ADDR is not set: no Tessera to call")
	}
	u, err := url.Parse(addr)
	if err != nil {
		t.Fatal(err)
	}
	idle := 65 * time.Second
	if ms, err := strconv.Atoi(os.Getenv("TESSERA_IDLE_TIMEOUT_MS")); err == nil {
		idle = time.Duration(ms) * time.Millisecond
	}
	tt := target{addr: addr, host: u.Host, clientID: os.Getenv("TESSERA_CLIENT_ID"), adminToken: os.Getenv("TESSERA_ADMIN_TOKEN"), idle: idle}
	if u.Scheme == "https" {
		pem, err := os.ReadFile(os.Getenv("TESSERA_CA_FILE"))
		if err != nil {
			t.Fatalf("an https TESSERA_ADDR needs TESSERA_CA_FILE: %v", err)
		}
		tt.roots = x509.NewCertPool()
		if !tt.roots.AppendCertsFromPEM(pem) {
			t.Fatal("TESSERA_CA_FILE holds no certificate")
		}
	}
	return tt
}

// transport is grpc-go's: plaintext (h2c) or TLS, as the address says.
func (tt target) transport() grpc.DialOption {
	if tt.roots == nil {
		return grpc.WithTransportCredentials(insecure.NewCredentials())
	}
	return grpc.WithTransportCredentials(credentials.NewTLS(&tls.Config{RootCAs: tt.roots}))
}

// httpClient is connect-go's: HTTP/2 over h2c or TLS.
func (tt target) httpClient() *http.Client {
	var protocols http.Protocols
	protocols.SetUnencryptedHTTP2(true)
	protocols.SetHTTP2(true)
	return &http.Client{Transport: &http.Transport{Protocols: &protocols, TLSClientConfig: &tls.Config{RootCAs: tt.roots}}}
}

func dial(t *testing.T, tt target, opts ...grpc.DialOption) *grpc.ClientConn {
	t.Helper()
	conn, err := grpc.NewClient(tt.host, append([]grpc.DialOption{tt.transport()}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

func ctxFor(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

func adminCtx(ctx context.Context, tt target) context.Context {
	return metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+tt.adminToken)
}

func findErrorInfo(details []any) *errdetails.ErrorInfo {
	for _, d := range details {
		if m, ok := d.(*errdetails.ErrorInfo); ok {
			return m
		}
	}
	return nil
}

func findBadRequest(details []any) *errdetails.BadRequest {
	for _, d := range details {
		if m, ok := d.(*errdetails.BadRequest); ok {
			return m
		}
	}
	return nil
}

// A compressed request (grpc.UseCompressor), and answers compressed or not: grpc-go
// decompresses whatever grpc-encoding the answer names.
func TestGzipRequests(t *testing.T) {
	tt := tessera(t)
	conn := dial(t, tt)
	ctx := ctxFor(t, 10*time.Second)
	var header metadata.MD
	res, err := jwtv1.NewJwtServiceClient(conn).GetVersion(ctx, &jwtv1.GetVersionRequest{}, grpc.UseCompressor(gzip.Name), grpc.Header(&header))
	if err != nil {
		t.Fatalf("GetVersion with a gzip request: %v", err)
	}
	if res.GetVersion() == "" {
		t.Fatalf("GetVersion with a gzip request: no version")
	}
	// A compressed request with an error: the details still decode.
	_, err = apitokenv1.NewApiTokenServiceClient(conn).CreateToken(adminCtx(ctx, tt), &apitokenv1.CreateTokenRequest{}, grpc.UseCompressor(gzip.Name))
	st := status.Convert(err)
	if st.Code() != codes.InvalidArgument || findErrorInfo(st.Details()).GetReason() != "MISSING_FIELDS" {
		t.Fatalf("CreateToken without fields, gzip: want InvalidArgument MISSING_FIELDS, got %v %v", st.Code(), st.Details())
	}
	// A large compressible request, under the body limit once decompressed.
	desc := strings.Repeat("a", 1000)
	account := "gzip-" + randomHex(4)
	created, err := apitokenv1.NewApiTokenServiceClient(conn).CreateToken(adminCtx(ctx, tt), &apitokenv1.CreateTokenRequest{AccountId: account, Description: desc}, grpc.UseCompressor(gzip.Name))
	if err != nil {
		t.Fatalf("CreateToken gzip: %v", err)
	}
	if created.GetToken() == "" {
		t.Fatal("CreateToken gzip: no token")
	}
	// An answer over 1 KiB, to a client that accepts gzip (grpc-go lists every compressor
	// registered, gzip here, in grpc-accept-encoding): Tessera sends it compressed, and it decodes.
	list, err := apitokenv1.NewApiTokenServiceClient(conn).ListTokens(adminCtx(ctx, tt), &apitokenv1.ListTokensRequest{AccountId: account})
	if err != nil {
		t.Fatalf("ListTokens (an answer over 1 KiB): %v", err)
	}
	if len(list.GetTokens()) != 1 || list.GetTokens()[0].GetDescription() != desc {
		t.Fatalf("ListTokens (an answer over 1 KiB): want the one token described, got %d tokens", len(list.GetTokens()))
	}
}

// A request over TESSERA_BODY_LIMIT_BYTES (64 KiB by default): RESOURCE_EXHAUSTED, with a
// message naming the limit; compressed, the limit holds for the decompressed message too.
func TestRequestOverBodyLimit(t *testing.T) {
	tt := tessera(t)
	conn := dial(t, tt)
	ctx := ctxFor(t, 10*time.Second)
	big := &apitokenv1.CreateTokenRequest{AccountId: "big", Description: strings.Repeat("x", 70*1024)}
	for _, opts := range [][]grpc.CallOption{nil, {grpc.UseCompressor(gzip.Name)}} {
		_, err := apitokenv1.NewApiTokenServiceClient(conn).CreateToken(adminCtx(ctx, tt), big, opts...)
		st := status.Convert(err)
		if st.Code() != codes.ResourceExhausted || !strings.Contains(st.Message(), "65536") {
			t.Fatalf("CreateToken over the body limit (%d call options): want ResourceExhausted naming 65536, got %v %q", len(opts), st.Code(), st.Message())
		}
	}
	// The connection is still good afterwards.
	if _, err := jwtv1.NewJwtServiceClient(conn).GetVersion(ctx, &jwtv1.GetVersionRequest{}); err != nil {
		t.Fatalf("GetVersion after a refused large request: %v", err)
	}
}

// Past the idle timeout Tessera closes the connection (GOAWAY), and grpc-go reconnects without a
// failed RPC, with default dial options and with keepalive. Each case waits out 4 idle timeouts
// on its own connections: the cases run in parallel, with each other and with
// TestKeepalivePings (.ci/go-example passes -parallel to let all of them run at once).
func TestIdleConnections(t *testing.T) {
	t.Parallel()
	tt := tessera(t)
	if tt.idle > 5*time.Second {
		t.Skip("TESSERA_IDLE_TIMEOUT_MS is too long for this test")
	}
	for _, c := range []struct {
		name string
		opts []grpc.DialOption
	}{
		{"default dial options", nil},
		{"keepalive", []grpc.DialOption{grpc.WithKeepaliveParams(keepalive.ClientParameters{Time: 10 * time.Second, Timeout: 5 * time.Second, PermitWithoutStream: true})}},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			client := jwtv1.NewJwtServiceClient(dial(t, tt, c.opts...))
			deadline := time.Now().Add(4 * tt.idle)
			// Calls spread around the idle timeout: some land on a connection Tessera is closing.
			for calls := 0; time.Now().Before(deadline); calls++ {
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				_, err := client.GetVersion(ctx, &jwtv1.GetVersionRequest{})
				cancel()
				if err != nil {
					t.Fatalf("GetVersion #%d (idle timeout %v): %v", calls, tt.idle, err)
				}
				time.Sleep(tt.idle - 50*time.Millisecond + time.Duration(calls%5)*25*time.Millisecond)
			}
		})
	}
	// connect-go over HTTP/1.1 keep-alive, which Tessera closes at the idle timeout: Go's
	// transport sends the next call on a new connection (each case its own transport).
	for _, c := range []struct {
		name string
		opts []connect.ClientOption
	}{{"connect-go http/1.1", nil}, {"connect-go gRPC-Web http/1.1", []connect.ClientOption{connect.WithGRPCWeb()}}} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			http1 := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: tt.roots}}}
			t.Cleanup(http1.CloseIdleConnections)
			jwt := jwtv1connect.NewJwtServiceClient(http1, tt.addr, c.opts...)
			deadline := time.Now().Add(4 * tt.idle)
			for calls := 0; time.Now().Before(deadline); calls++ {
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				_, err := jwt.GetVersion(ctx, connect.NewRequest(&jwtv1.GetVersionRequest{}))
				cancel()
				if err != nil {
					t.Fatalf("GetVersion #%d (idle timeout %v): %v", calls, tt.idle, err)
				}
				time.Sleep(tt.idle - 30*time.Millisecond + time.Duration(calls%7)*10*time.Millisecond)
			}
		})
	}
}

// countingConn counts the writes made on a connection (grpc-go's frames).
type countingConn struct {
	net.Conn
	writes *atomic.Int64
}

func (c countingConn) Write(b []byte) (int, error) {
	c.writes.Add(1)
	return c.Conn.Write(b)
}

// Keepalive pings every 10 s (grpc-go's floor) with PermitWithoutStream, on a connection kept
// open by a quiet Health/Watch stream for 25 s: grpc-go pings (the only frames it writes then),
// Tessera answers each ping (grpc-go closes a connection whose ping goes unanswered for
// Timeout, ending the stream) and does not GOAWAY the client for pinging too often
// (too_many_pings would end the stream too); the connection serves a call afterwards. It runs in
// parallel with TestIdleConnections (on its own connection, whose writes alone are counted),
// after the other tests, which run one at a time.
func TestKeepalivePings(t *testing.T) {
	t.Parallel()
	tt := tessera(t)
	var writes atomic.Int64
	dialer := func(ctx context.Context, addr string) (net.Conn, error) {
		c, err := (&net.Dialer{}).DialContext(ctx, "tcp", addr)
		if err != nil {
			return nil, err
		}
		return countingConn{c, &writes}, nil
	}
	conn := dial(t, tt, grpc.WithContextDialer(dialer), grpc.WithKeepaliveParams(keepalive.ClientParameters{Time: 10 * time.Second, Timeout: 2 * time.Second, PermitWithoutStream: true}))
	ctx := ctxFor(t, 40*time.Second)
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stream, err := healthpb.NewHealthClient(conn).Watch(wctx, &healthpb.HealthCheckRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := stream.Recv(); err != nil {
		t.Fatal(err)
	}
	ended := make(chan error, 1)
	var received atomic.Int64
	go func() {
		for {
			if _, err := stream.Recv(); err != nil {
				ended <- err
				return
			}
			received.Add(1)
		}
	}()
	before := writes.Load()
	select {
	case err := <-ended:
		t.Fatalf("Watch ended while pinging: %v", err)
	case <-time.After(25 * time.Second):
	}
	if n := received.Load(); n != 0 {
		t.Fatalf("Watch sent %d messages without a change: the connection was not quiet", n)
	}
	if pings := writes.Load() - before; pings < 2 {
		t.Fatalf("grpc-go wrote %d frames in 25 s: want its keepalive pings (2)", pings)
	}
	if _, err := jwtv1.NewJwtServiceClient(conn).GetVersion(ctx, &jwtv1.GetVersionRequest{}); err != nil {
		t.Fatalf("GetVersion after the pings: %v", err)
	}
	cancel()
	if err := <-ended; status.Code(err) != codes.Canceled {
		t.Fatalf("Watch after cancel: want Canceled, got %v", err)
	}
}

// grpc-timeout in each unit it has (H, M, S, m, u, n): a call within its deadline is served,
// one whose deadline is too short to meet (0, or under a millisecond) is DEADLINE_EXCEEDED.
func TestGrpcTimeoutUnits(t *testing.T) {
	tt := tessera(t)
	client := tt.httpClient()
	call := func(timeout string) (int, string) {
		req, err := http.NewRequest("POST", tt.addr+"/tessera.jwt.v1.JwtService/GetVersion", bytes.NewReader([]byte{0, 0, 0, 0, 0}))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("content-type", "application/grpc")
		req.Header.Set("te", "trailers")
		req.Header.Set("grpc-timeout", timeout)
		res, err := client.Do(req)
		if err != nil {
			t.Fatalf("grpc-timeout %s: %v", timeout, err)
		}
		defer res.Body.Close()
		_, _ = io.ReadAll(res.Body)
		code := res.Trailer.Get("grpc-status")
		if code == "" {
			code = res.Header.Get("grpc-status")
		}
		n, err := strconv.Atoi(code)
		if err != nil {
			t.Fatalf("grpc-timeout %s: HTTP %d, no grpc-status", timeout, res.StatusCode)
		}
		msg := res.Trailer.Get("grpc-message") + res.Header.Get("grpc-message")
		return n, msg
	}
	for _, ok := range []string{"1H", "2M", "30S", "5000m", "5000000u", "99999999n", "99999999S"} {
		if code, msg := call(ok); code != 0 {
			t.Errorf("grpc-timeout %s: want OK, got %d %q", ok, code, msg)
		}
	}
	for _, short := range []string{"0n", "0m", "0S", "1n", "1u", "999u"} {
		if code, msg := call(short); code != int(codes.DeadlineExceeded) {
			t.Errorf("grpc-timeout %s: want DEADLINE_EXCEEDED, got %d %q", short, code, msg)
		}
	}
	for _, bad := range []string{"1x", "S", "123456789S", "-1S"} {
		if code, msg := call(bad); code != int(codes.InvalidArgument) {
			t.Errorf("grpc-timeout %q: want INVALID_ARGUMENT, got %d %q", bad, code, msg)
		}
	}
	// grpc-go picks the unit itself.
	conn := dial(t, tt)
	for _, d := range []time.Duration{time.Hour, 10 * time.Second, 900 * time.Millisecond} {
		ctx, cancel := context.WithTimeout(context.Background(), d)
		_, err := jwtv1.NewJwtServiceClient(conn).GetVersion(ctx, &jwtv1.GetVersionRequest{})
		cancel()
		if err != nil {
			t.Errorf("grpc-go deadline %v: %v", d, err)
		}
	}
}

// Binary (-bin) metadata and large metadata, as grpc-go sends them.
func TestMetadata(t *testing.T) {
	tt := tessera(t)
	conn := dial(t, tt)
	ctx := ctxFor(t, 10*time.Second)
	bin := string([]byte{0, 1, 2, 0xff, 0xfe, '\n', '"'})
	mdCtx := metadata.AppendToOutgoingContext(ctx, "x-trace-bin", bin, "x-note", strings.Repeat("n", 8*1024))
	var header metadata.MD
	if _, err := jwtv1.NewJwtServiceClient(conn).GetVersion(mdCtx, &jwtv1.GetVersionRequest{}, grpc.Header(&header)); err != nil {
		t.Fatalf("GetVersion with binary and 8 KiB metadata: %v", err)
	}
	if len(header.Get("x-request-id")) != 1 {
		t.Fatalf("GetVersion: no x-request-id in the answer's metadata: %v", header)
	}
	// Many small entries (300, 13.5 KiB as HTTP/2 counts them): the header list's size is the
	// bound, not its count.
	var many []string
	for i := 0; i < 300; i++ {
		many = append(many, "x-m-"+strconv.Itoa(i), "v")
	}
	if _, err := jwtv1.NewJwtServiceClient(conn).GetVersion(metadata.AppendToOutgoingContext(ctx, many...), &jwtv1.GetVersionRequest{}); err != nil {
		t.Fatalf("GetVersion with 300 metadata entries: %v", err)
	}
	// Metadata over the 16 KiB header block: a gRPC error, and the connection still serves.
	tooBig := metadata.AppendToOutgoingContext(ctx, "x-note", strings.Repeat("n", 20*1024))
	_, err := jwtv1.NewJwtServiceClient(conn).GetVersion(tooBig, &jwtv1.GetVersionRequest{})
	if err == nil {
		t.Fatal("GetVersion with 20 KiB of metadata: served")
	}
	t.Logf("20 KiB of metadata: %v", err)
	if _, err := jwtv1.NewJwtServiceClient(conn).GetVersion(ctx, &jwtv1.GetVersionRequest{}); err != nil {
		t.Fatalf("GetVersion after too much metadata: %v", err)
	}
}

// status.FromError(err).Details() decodes ErrorInfo and BadRequest.
func TestErrorDetails(t *testing.T) {
	tt := tessera(t)
	conn := dial(t, tt)
	ctx := ctxFor(t, 10*time.Second)
	_, err := apitokenv1.NewApiTokenServiceClient(conn).CreateToken(adminCtx(ctx, tt), &apitokenv1.CreateTokenRequest{})
	st, ok := status.FromError(err)
	if !ok || st.Code() != codes.InvalidArgument {
		t.Fatalf("CreateToken without fields: %v", err)
	}
	info := findErrorInfo(st.Details())
	if info.GetReason() != "MISSING_FIELDS" || info.GetDomain() != "tessera" {
		t.Fatalf("ErrorInfo: %v (details %v)", info, st.Details())
	}
	var fields []string
	for _, v := range findBadRequest(st.Details()).GetFieldViolations() {
		fields = append(fields, v.GetField())
	}
	if strings.Join(fields, ",") != "account_id,description" {
		t.Fatalf("BadRequest fields: %v", fields)
	}
	for _, d := range st.Details() {
		if e, ok := d.(error); ok {
			t.Fatalf("a detail grpc-go cannot decode: %v", e)
		}
	}
}

// grpc.health.v1: Check, and Watch cancelled by the client.
func TestHealth(t *testing.T) {
	tt := tessera(t)
	conn := dial(t, tt)
	ctx := ctxFor(t, 10*time.Second)
	health := healthpb.NewHealthClient(conn)
	res, err := health.Check(ctx, &healthpb.HealthCheckRequest{})
	if err != nil || res.GetStatus() != healthpb.HealthCheckResponse_SERVING {
		t.Fatalf("Check: %v %v", res, err)
	}
	_, err = health.Check(ctx, &healthpb.HealthCheckRequest{Service: "no.such.Service"})
	if status.Code(err) != codes.NotFound {
		t.Fatalf("Check of an unknown service: want NotFound, got %v", err)
	}
	for i := 0; i < 3; i++ {
		wctx, cancel := context.WithCancel(ctx)
		stream, err := health.Watch(wctx, &healthpb.HealthCheckRequest{})
		if err != nil {
			t.Fatal(err)
		}
		first, err := stream.Recv()
		if err != nil || first.GetStatus() != healthpb.HealthCheckResponse_SERVING {
			t.Fatalf("Watch: %v %v", first, err)
		}
		cancel()
		if _, err := stream.Recv(); status.Code(err) != codes.Canceled {
			t.Fatalf("Watch after cancel: want Canceled, got %v", err)
		}
	}
	// Watch with a deadline ends DEADLINE_EXCEEDED (README).
	dctx, cancel := context.WithTimeout(ctx, 500*time.Millisecond)
	defer cancel()
	stream, err := health.Watch(dctx, &healthpb.HealthCheckRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := stream.Recv(); err != nil {
		t.Fatal(err)
	}
	if _, err := stream.Recv(); status.Code(err) != codes.DeadlineExceeded {
		t.Fatalf("Watch past its deadline: want DeadlineExceeded, got %v", err)
	}
	// The connection still serves after the cancelled streams.
	if _, err := health.Check(ctx, &healthpb.HealthCheckRequest{}); err != nil {
		t.Fatalf("Check after Watch: %v", err)
	}
}

// connect-go over Connect (JSON and binary, POST and GET), gRPC and gRPC-Web, with gzip.
func TestConnectGo(t *testing.T) {
	tt := tessera(t)
	ctx := ctxFor(t, 10*time.Second)
	httpClient := tt.httpClient()
	for _, c := range []struct {
		name string
		opts []connect.ClientOption
	}{
		{"connect+proto", nil},
		{"connect+json", []connect.ClientOption{connect.WithProtoJSON()}},
		{"connect GET", []connect.ClientOption{connect.WithHTTPGet()}},
		{"connect GET json", []connect.ClientOption{connect.WithHTTPGet(), connect.WithProtoJSON()}},
		{"connect gzip", []connect.ClientOption{connect.WithSendGzip()}},
		{"connect json gzip", []connect.ClientOption{connect.WithProtoJSON(), connect.WithSendGzip()}},
		{"grpc", []connect.ClientOption{connect.WithGRPC()}},
		{"grpc gzip", []connect.ClientOption{connect.WithGRPC(), connect.WithSendGzip()}},
		{"grpc-web", []connect.ClientOption{connect.WithGRPCWeb()}},
		{"grpc-web json", []connect.ClientOption{connect.WithGRPCWeb(), connect.WithProtoJSON()}},
		{"grpc-web gzip", []connect.ClientOption{connect.WithGRPCWeb(), connect.WithSendGzip()}},
	} {
		jwt := jwtv1connect.NewJwtServiceClient(httpClient, tt.addr, c.opts...)
		res, err := jwt.GetVersion(ctx, connect.NewRequest(&jwtv1.GetVersionRequest{}))
		if err != nil {
			t.Errorf("%s: GetVersion: %v", c.name, err)
			continue
		}
		if res.Msg.GetVersion() == "" {
			t.Errorf("%s: GetVersion: no version", c.name)
		}
		admin := apitokenv1connect.NewApiTokenServiceClient(httpClient, tt.addr, c.opts...)
		list := connect.NewRequest(&apitokenv1.ListTokensRequest{AccountId: "nobody-" + randomHex(4)})
		list.Header().Set("Authorization", "Bearer "+tt.adminToken)
		if _, err := admin.ListTokens(ctx, list); err != nil {
			t.Errorf("%s: ListTokens: %v", c.name, err)
		}
		missing := connect.NewRequest(&apitokenv1.CreateTokenRequest{})
		missing.Header().Set("Authorization", "Bearer "+tt.adminToken)
		_, err = admin.CreateToken(ctx, missing)
		var cerr *connect.Error
		if !errors.As(err, &cerr) || cerr.Code() != connect.CodeInvalidArgument || reasonOf(cerr) != "MISSING_FIELDS" {
			t.Errorf("%s: CreateToken without fields: %v", c.name, err)
		}
	}
}

// A gRPC-Web request over the body limit, and a Connect one: RESOURCE_EXHAUSTED too.
func TestConnectOverBodyLimit(t *testing.T) {
	tt := tessera(t)
	ctx := ctxFor(t, 10*time.Second)
	http1 := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: tt.roots}}}
	for i, opts := range [][]connect.ClientOption{nil, {connect.WithGRPCWeb()}, {connect.WithGRPC()}, {connect.WithSendGzip()}, nil, {connect.WithGRPCWeb()}, {connect.WithGRPCWeb(), connect.WithSendGzip()}} {
		client := tt.httpClient()
		if i >= 4 {
			client = http1
		}
		admin := apitokenv1connect.NewApiTokenServiceClient(client, tt.addr, opts...)
		req := connect.NewRequest(&apitokenv1.CreateTokenRequest{AccountId: "big", Description: strings.Repeat("x", 70*1024)})
		req.Header().Set("Authorization", "Bearer "+tt.adminToken)
		_, err := admin.CreateToken(ctx, req)
		if connect.CodeOf(err) != connect.CodeResourceExhausted {
			t.Errorf("over the body limit (case %d): want ResourceExhausted, got %v", i, err)
		}
	}
}

// Server reflection as grpcurl and grpc-go's clients use it, v1 and v1alpha alike: the services
// listed, a file by symbol (with its comments), a file by name, an unknown symbol NOT_FOUND.
func TestReflection(t *testing.T) {
	tt := tessera(t)
	conn := dial(t, tt)
	ctx := ctxFor(t, 10*time.Second)
	type exchange func(*reflectionpb.ServerReflectionRequest) *reflectionpb.ServerReflectionResponse
	v1 := func(t *testing.T) exchange {
		stream, err := reflectionpb.NewServerReflectionClient(conn).ServerReflectionInfo(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return func(req *reflectionpb.ServerReflectionRequest) *reflectionpb.ServerReflectionResponse {
			if err := stream.Send(req); err != nil {
				t.Fatal(err)
			}
			res, err := stream.Recv()
			if err != nil {
				t.Fatal(err)
			}
			return res
		}
	}
	// v1alpha has the same messages under another package: sent and read back as v1's bytes.
	v1alpha := func(t *testing.T) exchange {
		stream, err := reflectionv1alphapb.NewServerReflectionClient(conn).ServerReflectionInfo(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return func(req *reflectionpb.ServerReflectionRequest) *reflectionpb.ServerReflectionResponse {
			b, _ := proto.Marshal(req)
			alpha := &reflectionv1alphapb.ServerReflectionRequest{}
			if err := proto.Unmarshal(b, alpha); err != nil {
				t.Fatal(err)
			}
			if err := stream.Send(alpha); err != nil {
				t.Fatal(err)
			}
			res, err := stream.Recv()
			if err != nil {
				t.Fatal(err)
			}
			b, _ = proto.Marshal(res)
			out := &reflectionpb.ServerReflectionResponse{}
			if err := proto.Unmarshal(b, out); err != nil {
				t.Fatal(err)
			}
			return out
		}
	}
	for name, open := range map[string]func(*testing.T) exchange{"v1": v1, "v1alpha": v1alpha} {
		t.Run(name, func(t *testing.T) {
			call := open(t)
			var services []string
			for _, s := range call(&reflectionpb.ServerReflectionRequest{MessageRequest: &reflectionpb.ServerReflectionRequest_ListServices{}}).GetListServicesResponse().GetService() {
				services = append(services, s.GetName())
			}
			sort.Strings(services)
			want := "grpc.health.v1.Health grpc.reflection.v1.ServerReflection grpc.reflection.v1alpha.ServerReflection " +
				"tessera.apitoken.v1.ApiTokenService tessera.audit.v1.AuditService tessera.authtoken.v1.AuthenticationTokenService " +
				"tessera.jwt.v1.JwtService tessera.key.v1.KeyService tessera.session.v1.SessionService tessera.session.v1.UserService " +
				"tessera.usertoken.v1.UserTokenService"
			if strings.Join(services, " ") != want {
				t.Fatalf("list services: %v", services)
			}
			for _, req := range []*reflectionpb.ServerReflectionRequest{
				{MessageRequest: &reflectionpb.ServerReflectionRequest_FileContainingSymbol{FileContainingSymbol: "tessera.jwt.v1.JwtService.Check"}},
				{MessageRequest: &reflectionpb.ServerReflectionRequest_FileByFilename{FileByFilename: "tessera/jwt/v1/jwt.proto"}},
			} {
				files := call(req).GetFileDescriptorResponse().GetFileDescriptorProto()
				if len(files) == 0 {
					t.Fatalf("%v: no file", req)
				}
				f := &descriptorpb.FileDescriptorProto{}
				if err := proto.Unmarshal(files[0], f); err != nil {
					t.Fatal(err)
				}
				if f.GetName() != "tessera/jwt/v1/jwt.proto" || len(f.GetSourceCodeInfo().GetLocation()) == 0 {
					t.Fatalf("%v: file %q without comments", req, f.GetName())
				}
			}
			// What grpcurl describe does: every service's file and the files it imports, fetched
			// by name until none is missing, make one whole set of descriptors (with the
			// google.rpc detail types it decodes error details with).
			files := map[string]*descriptorpb.FileDescriptorProto{}
			var add func(req *reflectionpb.ServerReflectionRequest)
			add = func(req *reflectionpb.ServerReflectionRequest) {
				res := call(req)
				if res.GetErrorResponse() != nil {
					t.Fatalf("%v: %v", req, res.GetErrorResponse())
				}
				for _, b := range res.GetFileDescriptorResponse().GetFileDescriptorProto() {
					f := &descriptorpb.FileDescriptorProto{}
					if err := proto.Unmarshal(b, f); err != nil {
						t.Fatal(err)
					}
					files[f.GetName()] = f
				}
				for _, f := range files {
					for _, dep := range f.GetDependency() {
						if files[dep] == nil {
							add(&reflectionpb.ServerReflectionRequest{MessageRequest: &reflectionpb.ServerReflectionRequest_FileByFilename{FileByFilename: dep}})
						}
					}
				}
			}
			for _, s := range append(services, "google.rpc.ErrorInfo", "google.rpc.BadRequest", "google.rpc.RetryInfo") {
				add(&reflectionpb.ServerReflectionRequest{MessageRequest: &reflectionpb.ServerReflectionRequest_FileContainingSymbol{FileContainingSymbol: s}})
			}
			set := &descriptorpb.FileDescriptorSet{}
			for _, f := range files {
				set.File = append(set.File, f)
			}
			registry, err := protodesc.NewFiles(set)
			if err != nil {
				t.Fatalf("the files reflection serves do not make a whole set: %v", err)
			}
			for _, name := range []string{"tessera.session.v1.SessionService.CreateSession", "google.rpc.BadRequest", "tessera.options.v1.access"} {
				if _, err := registry.FindDescriptorByName(protoreflect.FullName(name)); err != nil {
					t.Fatalf("%s: %v", name, err)
				}
			}
			res := call(&reflectionpb.ServerReflectionRequest{MessageRequest: &reflectionpb.ServerReflectionRequest_FileContainingSymbol{FileContainingSymbol: "no.such.Symbol"}})
			if codes.Code(res.GetErrorResponse().GetErrorCode()) != codes.NotFound {
				t.Fatalf("an unknown symbol: want NOT_FOUND, got %v", res)
			}
		})
	}
}

// connect-go with Go's default client (HTTP/1.1 over plain HTTP, as most callers have it):
// Connect and gRPC-Web, unary and a server stream (grpc.health.v1.Health/Watch) cancelled by
// the client; and the same stream over gRPC (HTTP/2).
func TestConnectGoStreams(t *testing.T) {
	tt := tessera(t)
	ctx := ctxFor(t, 10*time.Second)
	http1 := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: tt.roots}}}
	for _, c := range []struct {
		name   string
		client *http.Client
		opts   []connect.ClientOption
	}{
		{"connect http/1.1", http1, nil},
		{"connect json http/1.1", http1, []connect.ClientOption{connect.WithProtoJSON()}},
		{"grpc-web http/1.1", http1, []connect.ClientOption{connect.WithGRPCWeb()}},
		{"connect h2", tt.httpClient(), nil},
		{"grpc-web h2", tt.httpClient(), []connect.ClientOption{connect.WithGRPCWeb()}},
		{"grpc h2", tt.httpClient(), []connect.ClientOption{connect.WithGRPC()}},
	} {
		jwt := jwtv1connect.NewJwtServiceClient(c.client, tt.addr, c.opts...)
		if _, err := jwt.GetVersion(ctx, connect.NewRequest(&jwtv1.GetVersionRequest{})); err != nil {
			t.Errorf("%s: GetVersion: %v", c.name, err)
		}
		watch := connect.NewClient[healthpb.HealthCheckRequest, healthpb.HealthCheckResponse](c.client, tt.addr+"/grpc.health.v1.Health/Watch", c.opts...)
		for i := 0; i < 2; i++ {
			wctx, cancel := context.WithCancel(ctx)
			stream, err := watch.CallServerStream(wctx, connect.NewRequest(&healthpb.HealthCheckRequest{}))
			if err != nil {
				t.Fatalf("%s: Watch: %v", c.name, err)
			}
			if !stream.Receive() || stream.Msg().GetStatus() != healthpb.HealthCheckResponse_SERVING {
				t.Fatalf("%s: Watch: %v %v", c.name, stream.Msg(), stream.Err())
			}
			cancel()
			for stream.Receive() {
			}
			if connect.CodeOf(stream.Err()) != connect.CodeCanceled {
				t.Fatalf("%s: Watch after cancel: %v", c.name, stream.Err())
			}
			stream.Close()
		}
		unknown, err := watch.CallServerStream(ctx, connect.NewRequest(&healthpb.HealthCheckRequest{Service: "no.such.Service"}))
		if err != nil {
			t.Fatal(err)
		}
		if !unknown.Receive() || unknown.Msg().GetStatus() != healthpb.HealthCheckResponse_SERVICE_UNKNOWN {
			t.Fatalf("%s: Watch of an unknown service: %v %v", c.name, unknown.Msg(), unknown.Err())
		}
		unknown.Close()
	}
}

// A large answer (ListTokens of an account with many tokens), compressed when the client takes
// gzip, decodes in grpc-go and connect-go.
func TestLargeAnswers(t *testing.T) {
	tt := tessera(t)
	conn := dial(t, tt)
	ctx := ctxFor(t, 30*time.Second)
	account := "large-" + randomHex(4)
	tokens := apitokenv1.NewApiTokenServiceClient(conn)
	for i := 0; i < 40; i++ {
		if _, err := tokens.CreateToken(adminCtx(ctx, tt), &apitokenv1.CreateTokenRequest{AccountId: account, Description: strings.Repeat("d", 500)}); err != nil {
			t.Fatal(err)
		}
	}
	for _, opts := range [][]grpc.CallOption{nil, {grpc.UseCompressor(gzip.Name)}} {
		var header metadata.MD
		res, err := tokens.ListTokens(adminCtx(ctx, tt), &apitokenv1.ListTokensRequest{AccountId: account}, append(opts, grpc.Header(&header))...)
		if err != nil || len(res.GetTokens()) != 40 {
			t.Fatalf("grpc-go ListTokens (%d options): %d tokens, %v", len(opts), len(res.GetTokens()), err)
		}
		t.Logf("grpc-go ListTokens (%d options): grpc-encoding %v", len(opts), header.Get("grpc-encoding"))
	}
	for _, opts := range [][]connect.ClientOption{nil, {connect.WithGRPC()}, {connect.WithGRPCWeb()}, {connect.WithHTTPGet()}, {connect.WithProtoJSON()}} {
		admin := apitokenv1connect.NewApiTokenServiceClient(tt.httpClient(), tt.addr, opts...)
		req := connect.NewRequest(&apitokenv1.ListTokensRequest{AccountId: account})
		req.Header().Set("Authorization", "Bearer "+tt.adminToken)
		res, err := admin.ListTokens(ctx, req)
		if err != nil || len(res.Msg.GetTokens()) != 40 {
			t.Fatalf("connect-go ListTokens (%d options): %v", len(opts), err)
		}
	}
}

// A method or service Tessera lacks (a client built from newer protos): UNIMPLEMENTED with its
// message and ErrorInfo, over gRPC (grpc-go) and gRPC-Web (connect-go).
func TestUnknownMethod(t *testing.T) {
	tt := tessera(t)
	conn := dial(t, tt)
	ctx := ctxFor(t, 10*time.Second)
	for _, c := range []struct{ path, message string }{
		{"/tessera.jwt.v1.JwtService/NoSuch", "unknown method NoSuch for service tessera.jwt.v1.JwtService"},
		{"/no.such.Service/Method", "unknown service no.such.Service"},
	} {
		st := status.Convert(conn.Invoke(ctx, c.path, &jwtv1.GetVersionRequest{}, &jwtv1.GetVersionResponse{}))
		if st.Code() != codes.Unimplemented || st.Message() != c.message || findErrorInfo(st.Details()).GetReason() != "UNIMPLEMENTED" {
			t.Errorf("grpc-go %s: want Unimplemented %q with ErrorInfo UNIMPLEMENTED, got %v %q %v", c.path, c.message, st.Code(), st.Message(), st.Details())
		}
		web := connect.NewClient[jwtv1.GetVersionRequest, jwtv1.GetVersionResponse](tt.httpClient(), tt.addr+c.path, connect.WithGRPCWeb())
		_, err := web.CallUnary(ctx, connect.NewRequest(&jwtv1.GetVersionRequest{}))
		var cerr *connect.Error
		if !errors.As(err, &cerr) || cerr.Code() != connect.CodeUnimplemented || cerr.Message() != c.message || reasonOf(cerr) != "UNIMPLEMENTED" {
			t.Errorf("connect-go gRPC-Web %s: want Unimplemented %q with ErrorInfo UNIMPLEMENTED, got %v", c.path, c.message, err)
		}
	}
}
