// A Go client of a running Tessera: grpc-go and connect-go (Connect, gRPC and gRPC-Web), with
// the code generated from Tessera's protos (gen/, see buf.gen.yaml), the error details read as
// google.rpc messages, and the API reference read back through server reflection.
//
//	go run . -addr http://127.0.0.1:8080 -client-id web -admin-token change-me-0123456789
//
// Each step prints one line and checks what it got; the program exits 1 at the first surprise.
package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"connectrpc.com/connect"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	reflectionpb "google.golang.org/grpc/reflection/grpc_reflection_v1"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protodesc"
	"google.golang.org/protobuf/types/descriptorpb"

	apitokenv1 "tessera/gen/go/tessera/apitoken/v1"
	"tessera/gen/go/tessera/apitoken/v1/apitokenv1connect"
	jwtv1 "tessera/gen/go/tessera/jwt/v1"
	keyv1 "tessera/gen/go/tessera/key/v1"
	"tessera/gen/go/tessera/key/v1/keyv1connect"
	sessionv1 "tessera/gen/go/tessera/session/v1"
	"tessera/gen/go/tessera/session/v1/sessionv1connect"
)

func main() {
	addr := flag.String("addr", "http://127.0.0.1:8080", "Tessera's base URL (plain HTTP: h2c for gRPC)")
	clientID := flag.String("client-id", "", "a configured x-koms-clientid (TESSERA_CLIENT_IDS)")
	adminToken := flag.String("admin-token", "", "TESSERA_ADMIN_TOKEN")
	flag.Parse()
	if *clientID == "" || *adminToken == "" {
		fail("usage: -addr URL -client-id ID -admin-token TOKEN")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	base, err := url.Parse(*addr)
	check(err)
	conn, err := grpc.NewClient(base.Host, grpc.WithTransportCredentials(insecure.NewCredentials()))
	check(err)
	defer conn.Close()
	grpcGo(ctx, conn)
	connectGo(ctx, *addr, *clientID, *adminToken)
	describe(ctx, conn)
	fmt.Println("ok: every call answered as documented")
}

// grpcGo calls Tessera with grpc-go and reads an error's details from its status.
func grpcGo(ctx context.Context, conn *grpc.ClientConn) {
	version, err := jwtv1.NewJwtServiceClient(conn).GetVersion(ctx, &jwtv1.GetVersionRequest{})
	check(err)
	fmt.Printf("grpc-go: JwtService.GetVersion -> %s\n", version.GetVersion())

	md := metadata.Pairs("x-koms-clientid", "no-such-client")
	_, err = sessionv1.NewSessionServiceClient(conn).GetSession(metadata.NewOutgoingContext(ctx, md), &sessionv1.GetSessionRequest{})
	st := status.Convert(err)
	info := errorInfo(st.Details())
	expect(st.Code() == codes.Unauthenticated && info.GetReason() == "UNKNOWN_CLIENT_ID" && info.GetDomain() == "tessera",
		"GetSession with an unknown client id: want UNAUTHENTICATED, ErrorInfo UNKNOWN_CLIENT_ID, got %v %v", st.Code(), info)
	fmt.Printf("grpc-go: SessionService.GetSession with an unknown client id -> %s, reason %s\n", st.Code(), info.GetReason())
}

// connectGo calls Tessera with connect-go over each protocol it speaks.
func connectGo(ctx context.Context, addr, clientID, adminToken string) {
	// h2c: the gRPC protocol needs HTTP/2; Connect and gRPC-Web use it too here.
	var protocols http.Protocols
	protocols.SetUnencryptedHTTP2(true)
	httpClient := &http.Client{Transport: &http.Transport{Protocols: &protocols}}

	// Connect, with HTTP GET for a method declared free of side effects.
	keys := keyv1connect.NewKeyServiceClient(httpClient, addr, connect.WithHTTPGet())
	doc, err := keys.GetOpenIdConfiguration(ctx, connect.NewRequest(&keyv1.GetOpenIdConfigurationRequest{}))
	check(err)
	expect(strings.HasSuffix(doc.Msg.GetJwksUri(), "/.well-known/jwks.json"), "jwks_uri: %q", doc.Msg.GetJwksUri())
	// Without TESSERA_PUBLIC_URL, jwks_uri follows the request's Host: for the caller's own cache alone.
	expect(doc.Header().Get("Cache-Control") == "private, max-age=300", "discovery Cache-Control: %q", doc.Header().Get("Cache-Control"))
	fmt.Printf("connect-go (Connect GET): KeyService.GetOpenIdConfiguration -> issuer %s, jwks_uri %s\n", doc.Msg.GetIssuer(), doc.Msg.GetJwksUri())

	// Connect: an admin call creating an API token.
	admin := apitokenv1connect.NewApiTokenServiceClient(httpClient, addr)
	create := connect.NewRequest(&apitokenv1.CreateTokenRequest{AccountId: "go-example-" + randomHex(4), Description: "connect-go example"})
	create.Header().Set("Authorization", "Bearer "+adminToken)
	created, err := admin.CreateToken(ctx, create)
	check(err)
	fmt.Printf("connect-go (Connect): ApiTokenService.CreateToken -> a %d-character token\n", len(created.Msg.GetToken()))

	// gRPC and gRPC-Web: the token authenticates.
	for _, p := range []struct {
		name string
		opt  connect.ClientOption
	}{{"gRPC", connect.WithGRPC()}, {"gRPC-Web", connect.WithGRPCWeb()}} {
		client := apitokenv1connect.NewApiTokenServiceClient(httpClient, addr, p.opt)
		auth := connect.NewRequest(&apitokenv1.AuthenticateRequest{})
		auth.Header().Set("Authorization", "Bearer "+created.Msg.GetToken())
		res, err := client.Authenticate(ctx, auth)
		check(err)
		expect(res.Msg.GetAccountId() == create.Msg.GetAccountId(), "%s Authenticate: account %q", p.name, res.Msg.GetAccountId())
		fmt.Printf("connect-go (%s): ApiTokenService.Authenticate -> account %s\n", p.name, res.Msg.GetAccountId())
	}

	// An error with a BadRequest: seed 001's "Missing fields", every field named.
	missing := connect.NewRequest(&apitokenv1.CreateTokenRequest{})
	missing.Header().Set("Authorization", "Bearer "+adminToken)
	_, err = admin.CreateToken(ctx, missing)
	var cerr *connect.Error
	expect(errors.As(err, &cerr) && cerr.Code() == connect.CodeInvalidArgument, "CreateToken without fields: %v", err)
	var reason string
	var fields []string
	for _, d := range cerr.Details() {
		v, err := d.Value()
		check(err)
		switch m := v.(type) {
		case *errdetails.ErrorInfo:
			reason = m.GetReason()
		case *errdetails.BadRequest:
			for _, f := range m.GetFieldViolations() {
				fields = append(fields, f.GetField())
			}
		}
	}
	expect(reason == "MISSING_FIELDS" && strings.Join(fields, ",") == "account_id,description", "CreateToken without fields: reason %q, fields %v", reason, fields)
	fmt.Printf("connect-go (Connect): ApiTokenService.CreateToken without fields -> %s, reason %s, fields %s\n", cerr.Code(), reason, strings.Join(fields, ", "))

	// A client id Tessera knows, and a login that fails: INVALID_CREDENTIALS.
	sessions := sessionv1connect.NewSessionServiceClient(httpClient, addr, connect.WithGRPCWeb())
	login := connect.NewRequest(&sessionv1.CreateSessionRequest{AccountType: "traditional", Email: "nobody-" + randomHex(4) + "@example.com", Password: "not-a-password-123"})
	login.Header().Set("X-Koms-Clientid", clientID)
	_, err = sessions.CreateSession(ctx, login)
	expect(errors.As(err, &cerr) && cerr.Code() == connect.CodeUnauthenticated, "CreateSession of an unknown login: %v", err)
	fmt.Printf("connect-go (gRPC-Web): SessionService.CreateSession of an unknown login -> %s, reason %s\n", cerr.Code(), reasonOf(cerr))
	expect(reasonOf(cerr) == "INVALID_CREDENTIALS", "reason %q", reasonOf(cerr))
}

// describe reads KeyService's documentation back through server reflection (grpc-go's
// reflection client), as grpcurl describe does.
func describe(ctx context.Context, conn *grpc.ClientConn) {
	stream, err := reflectionpb.NewServerReflectionClient(conn).ServerReflectionInfo(ctx)
	check(err)
	check(stream.Send(&reflectionpb.ServerReflectionRequest{
		MessageRequest: &reflectionpb.ServerReflectionRequest_FileContainingSymbol{FileContainingSymbol: "tessera.key.v1.KeyService"},
	}))
	res, err := stream.Recv()
	check(err)
	check(stream.CloseSend())
	set := &descriptorpb.FileDescriptorSet{}
	for _, b := range res.GetFileDescriptorResponse().GetFileDescriptorProto() {
		f := &descriptorpb.FileDescriptorProto{}
		check(proto.Unmarshal(b, f))
		set.File = append(set.File, f)
	}
	files, err := protodesc.NewFiles(set)
	check(err)
	d, err := files.FindDescriptorByName("tessera.key.v1.KeyService.GetOpenIdConfiguration")
	check(err)
	comment := strings.TrimSpace(d.ParentFile().SourceLocations().ByDescriptor(d).LeadingComments)
	expect(strings.HasPrefix(comment, "The OpenID Connect discovery document"), "GetOpenIdConfiguration's comment: %q", comment)
	fmt.Printf("grpc-go (reflection): describe tessera.key.v1.KeyService.GetOpenIdConfiguration -> %q\n", strings.SplitN(comment, "\n", 2)[0])
}

func errorInfo(details []any) *errdetails.ErrorInfo {
	for _, d := range details {
		if info, ok := d.(*errdetails.ErrorInfo); ok {
			return info
		}
	}
	return nil
}

func reasonOf(err *connect.Error) string {
	for _, d := range err.Details() {
		if v, e := d.Value(); e == nil {
			if info, ok := v.(*errdetails.ErrorInfo); ok {
				return info.GetReason()
			}
		}
	}
	return ""
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

func check(err error) {
	if err != nil {
		fail("%v", err)
	}
}

func expect(ok bool, format string, args ...any) {
	if !ok {
		fail(format, args...)
	}
}

func fail(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "go example: "+format+"\n", args...)
	os.Exit(1)
}
