// HTTP/1.1 requests that no ordinary client sends, written byte for byte on a raw socket: the
// request-line forms of RFC 9112 3.2 (origin, absolute, authority, asterisk), request lines of
// other HTTP versions, methods and headers Node's servers hand to listeners of their own
// (CONNECT, over HTTP/2 too; Upgrade). Each gets a documented answer, and the server stays up.
import { strict as assert } from "node:assert";
import http2 from "node:http2";
import net from "node:net";
import tls from "node:tls";
import { errorInfoJson } from "../support/error-details.js";
import { http1Head, makeTestCertificate, type TestCertificate } from "../support/net.js";
import { startTestServer, testAdminToken, type TestServer } from "../support/server.js";
import { password, signUp, uniqueEmail, uniqueName } from "../support/users.js";
import { serverCheckedAfterEach } from "./support.js";

export interface WireAnswer {
  status: number;
  /** Header names lower-cased; the last value of a repeated header. */
  headers: Record<string, string>;
  body: string;
  /** The server closed the connection after answering. */
  closed: boolean;
}

/** A new connection to 127.0.0.1:`port`, `onConnect` called once it can be written to. */
export type Connector = (port: number, onConnect: () => void) => net.Socket;
const plainConnection: Connector = (port, onConnect) => net.connect(port, "127.0.0.1", onConnect);

/**
 * Writes `text` (latin1) on a new connection and reads the first answer (Content-Length framed,
 * or up to the close), then waits up to `closeWithinMs` to see whether the server closes it.
 * Text given in pieces is written a piece at a time, 30 ms apart: each comes to the server in a
 * read of its own.
 */
export function exchange(port: number, text: string | readonly string[], closeWithinMs = 0, connect: Connector = plainConnection): Promise<WireAnswer> {
  return new Promise((resolve, reject) => {
    const pieces = typeof text === "string" ? [text] : text;
    const socket = connect(port, () => {
      const next = (i: number) => {
        if (i === pieces.length || socket.destroyed) return;
        socket.write(Buffer.from(pieces[i]!, "latin1"));
        setTimeout(() => next(i + 1), 30);
      };
      next(0);
    });
    let data = "";
    let answer: Omit<WireAnswer, "closed"> | undefined;
    let timer: NodeJS.Timeout | undefined;
    const finish = (closed: boolean) => {
      clearTimeout(timer);
      socket.destroy();
      if (answer) resolve({ ...answer, closed });
      else reject(new Error(`no answer before the connection closed: ${JSON.stringify(data)}`));
    };
    const parse = (atClose: boolean) => {
      const head = http1Head(data);
      if (!head) return;
      const { status, headers, rest } = head;
      // 204 and 304 end at their header block (RFC 9112 6.3).
      const length = status === 204 || status === 304 ? "0" : headers["content-length"];
      if (length === undefined ? !atClose : rest.length < Number(length)) return;
      answer = { status, headers, body: length === undefined ? rest : rest.slice(0, Number(length)) };
    };
    socket.on("data", (d: Buffer) => {
      data += d.toString("latin1");
      if (answer) return;
      parse(false);
      if (answer) timer = setTimeout(() => finish(false), closeWithinMs);
    });
    socket.on("close", () => {
      if (!answer) parse(true);
      finish(true);
    });
    socket.on("error", reject);
  });
}

/**
 * A raw connection: bytes written as given, and what the server writes read as it comes, header
 * block by header block (an interim 100 is one), or all of it up to the close.
 */
export function rawConnection(port: number) {
  const socket = net.connect(port, "127.0.0.1");
  let data = "";
  let read = 0;
  let ended = false;
  let failure: Error | undefined;
  const waiting: Array<() => void> = [];
  const wake = () => {
    for (const w of waiting.splice(0)) w();
  };
  socket.on("data", (d: Buffer) => {
    data += d.toString("latin1");
    wake();
  });
  socket.on("close", () => {
    ended = true;
    wake();
  });
  socket.on("error", (e) => {
    failure = e;
  });
  const until = <T>(ready: () => T | undefined): Promise<T> =>
    new Promise((resolve, reject) => {
      const check = () => {
        const value = ready();
        if (value !== undefined) return resolve(value);
        if (ended) return reject(failure ?? new Error(`the connection closed; the server wrote ${JSON.stringify(data)}`));
        waiting.push(check);
      };
      check();
    });
  return {
    write: (text: string) => socket.write(Buffer.from(text, "latin1")),
    /** The next header block the server wrote, its blank line included. */
    headerBlock: () =>
      until(() => {
        const end = data.indexOf("\r\n\r\n", read);
        if (end < 0) return undefined;
        const block = data.slice(read, end + 4);
        read = end + 4;
        return block;
      }),
    /** Everything the server wrote, once it has closed the connection. */
    closed: () => until(() => (ended ? data : undefined)),
    destroy: () => socket.destroy(),
  };
}

/** The Content-Length framed answers in `text`, everything a server wrote on one connection, in order. */
function answersOf(text: string): Array<{ statusLine: string; head: string; body: string }> {
  const answers: Array<{ statusLine: string; head: string; body: string }> = [];
  let rest = text;
  while (rest !== "") {
    const end = rest.indexOf("\r\n\r\n");
    const head = rest.slice(0, end + 2);
    const length = Number(/\r\ncontent-length: (\d+)\r\n/i.exec(head)?.[1]);
    answers.push({ statusLine: head.slice(0, head.indexOf("\r\n")), head, body: rest.slice(end + 4, end + 4 + length) });
    rest = rest.slice(end + 4 + length);
  }
  return answers;
}

/** `body` as one chunk of a chunked body, then the last chunk. */
const chunked = (body: string) => `${body.length.toString(16)}\r\n${body}\r\n0\r\n\r\n`;

/** Text of a JWT's shape (compact JWS), which no error quotes back. */
const jwtShaped = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4In0.c2lnbmF0dXJl";
/** Text of a hand-off or refresh token's shape (43 base64url characters), letters only, as Node's parser takes a scheme. */
const tokenShaped = "QhhbmdlTWVQbGVhcVJdElzQVNlYRldFRvaVuMDEabcd";

describe("hostile: HTTP/1.1 request shapes (raw sockets)", function () {
  this.timeout(30_000);
  const checked = serverCheckedAfterEach();
  let server: TestServer;
  beforeEach(() => {
    server = checked();
  });

  describe("a request line of another HTTP version", () => {
    // llhttp parses "HTTP/2.0" in HTTP/1 syntax, and the request then passed for one of the
    // HTTP/2 server: the listener read its (absent) HTTP/2 stream and the process ended.
    for (const version of ["2.0", "0.9"]) {
      it(`HTTP/${version}: 505 naming the version, the connection closed`, async () => {
        const line = version === "0.9" ? "GET /jwt/version\r\n\r\n" : `GET /jwt/version HTTP/${version}\r\nhost: localhost\r\n\r\n`;
        const a = await exchange(server.port, line, 1000);
        assert.equal(a.status, 505);
        assert.equal(a.headers["content-type"], "application/json");
        assert.match(a.headers["x-request-id"] ?? "", /^[0-9a-f-]{36}$/);
        assert.deepEqual(JSON.parse(a.body), {
          code: "unimplemented",
          message: `HTTP/${version} is not served in HTTP/1.1 syntax: this port speaks HTTP/1.0, HTTP/1.1 and HTTP/2 (which starts with its connection preface)`,
          details: [errorInfoJson("UNIMPLEMENTED")],
        });
        assert.equal(a.closed, true);
      });
    }

    it("HTTP/2.0 on an RPC path (gRPC's content type): 505 as well", async () => {
      const a = await exchange(server.port, "POST /tessera.jwt.v1.JwtService/GetVersion HTTP/2.0\r\nhost: localhost\r\ncontent-type: application/grpc\r\ncontent-length: 5\r\n\r\n\0\0\0\0\0");
      assert.equal(a.status, 505);
    });

    // connect-es answered a bare 505 (and closed the connection), no body saying why.
    it("a bidirectional stream (reflection) over HTTP/1.1: 505 naming HTTP/2, the connection closed", async () => {
      const path = "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo";
      const a = await exchange(server.port, `POST ${path} HTTP/1.1\r\nhost: localhost\r\ncontent-type: application/grpc-web+proto\r\ncontent-length: 5\r\n\r\n\0\0\0\0\0`, 1000);
      assert.equal(a.status, 505);
      assert.equal(a.headers["content-type"], "application/json");
      assert.deepEqual(JSON.parse(a.body), {
        code: "unimplemented",
        message: `${path} is a bidirectional stream: it is served over HTTP/2 only`,
        details: [errorInfoJson("UNIMPLEMENTED")],
      });
      assert.equal(a.closed, true);
    });

    it("HTTP/1.0 and HTTP/1.1 are served", async () => {
      for (const version of ["1.0", "1.1"]) {
        const a = await exchange(server.port, `GET /jwt/version HTTP/${version}\r\nhost: localhost\r\nconnection: close\r\n\r\n`);
        assert.equal(a.status, 200, version);
        assert.equal(typeof (JSON.parse(a.body) as { version: unknown }).version, "string");
      }
    });
  });
  describe("a target in absolute form (RFC 9112 3.2.2: a server MUST accept it)", () => {
    const at = (authority: string, target: string) => `http://${authority}${target}`;
    const json = (a: WireAnswer) => JSON.parse(a.body) as Record<string, unknown>;

    it("REST: routed by its path", async () => {
      const a = await exchange(server.port, `GET ${at(`localhost:${server.port}`, "/jwt/version")} HTTP/1.1\r\nhost: localhost:${server.port}\r\n\r\n`);
      assert.equal(a.status, 200, a.body);
      assert.equal(typeof json(a).version, "string");
    });

    it("REST: its query is the request's query (seed 004's GET /jwt/token?user=&pass=)", async () => {
      const user = uniqueName("absolute");
      const made = await exchange(server.port, `POST http://localhost/jwt/user HTTP/1.1\r\nhost: localhost\r\ncontent-type: application/json\r\ncontent-length: ${JSON.stringify({ user, pass: "violet-kettle-harbour-29" }).length}\r\n\r\n${JSON.stringify({ user, pass: "violet-kettle-harbour-29" })}`);
      assert.equal(made.status, 201, made.body);
      const a = await exchange(server.port, `GET http://localhost/jwt/token?user=${user}&pass=violet-kettle-harbour-29 HTTP/1.1\r\nhost: localhost\r\n\r\n`);
      assert.equal(a.status, 200, a.body);
      assert.match(a.body, /^[\w-]+\.[\w-]+\.[\w-]+$/);
    });

    it("the scheme in any case, http or https (the connection, not the target, says whether it is TLS): served", async () => {
      for (const scheme of ["HTTP", "https", "hTTpS"]) {
        const a = await exchange(server.port, `GET ${scheme}://localhost/jwt/version HTTP/1.1\r\nhost: localhost\r\n\r\n`);
        assert.equal(a.status, 200, `${scheme}: ${a.body}`);
      }
    });

    it("no path: the path is /", async () => {
      const a = await exchange(server.port, `GET http://localhost:${server.port} HTTP/1.1\r\nhost: localhost\r\n\r\n`);
      assert.equal(a.status, 404);
      assert.equal(json(a).message, "no route for GET /");
      const q = await exchange(server.port, `GET http://localhost?x=1 HTTP/1.1\r\nhost: localhost\r\n\r\n`);
      assert.equal(json(q).message, "no route for GET /");
    });

    it("Connect (an RPC path), POST and GET (the message in the query)", async () => {
      const post = await exchange(server.port, `POST http://localhost/tessera.jwt.v1.JwtService/GetVersion HTTP/1.1\r\nhost: localhost\r\ncontent-type: application/json\r\ncontent-length: 2\r\n\r\n{}`);
      assert.equal(post.status, 200, post.body);
      assert.equal(typeof json(post).version, "string");
      const get = await exchange(server.port, `GET http://localhost/tessera.jwt.v1.JwtService/GetVersion?connect=v1&encoding=json&message=%7B%7D HTTP/1.1\r\nhost: localhost\r\n\r\n`);
      assert.equal(get.status, 200, get.body);
      assert.equal(get.headers["cache-control"], "public, max-age=60");
    });

    it("gRPC-Web (an RPC path): answered with grpc-status 0", async () => {
      const a = await exchange(server.port, `POST http://localhost/grpc.health.v1.Health/Check HTTP/1.1\r\nhost: localhost\r\nconnection: close\r\ncontent-type: application/grpc-web+proto\r\ncontent-length: 5\r\n\r\n\0\0\0\0\0`);
      assert.equal(a.status, 200);
      assert.equal(a.headers["content-type"], "application/grpc-web+proto");
      assert.match(a.body, /\x80\0\0\0\x10grpc-status: 0\r\n/);
    });

    it("its authority takes the place of Host: the discovery document's URLs name it (REST and Connect)", async () => {
      const rest = await exchange(server.port, `GET http://issuer.example:8443/.well-known/openid-configuration HTTP/1.1\r\nhost: other.example\r\n\r\n`);
      assert.equal(rest.status, 200, rest.body);
      assert.equal(json(rest).jwks_uri, "http://issuer.example:8443/.well-known/jwks.json");
      const connect = await exchange(server.port, `POST http://issuer.example:8443/tessera.key.v1.KeyService/GetOpenIdConfiguration HTTP/1.1\r\nhost: other.example\r\ncontent-type: application/json\r\ncontent-length: 2\r\n\r\n{}`);
      assert.equal(connect.status, 200, connect.body);
      assert.equal(json(connect).jwks_uri, "http://issuer.example:8443/.well-known/jwks.json");
    });

    it("HTTP/1.0 without a Host header: the authority is the request's (an RPC path needs one)", async () => {
      const a = await exchange(server.port, `POST http://localhost/tessera.jwt.v1.JwtService/GetVersion HTTP/1.0\r\ncontent-type: application/json\r\ncontent-length: 2\r\n\r\n{}`);
      assert.equal(a.status, 200, a.body);
    });

    for (const [target, message] of [
      ["ftp://localhost/jwt/version", 'the request target\'s scheme "ftp" is not http or https'],
      ["ws://localhost/tessera.jwt.v1.JwtService/GetVersion", 'the request target\'s scheme "ws" is not http or https'],
      // User info may be a credential (user:password): it is not quoted back.
      ["http://user@localhost/jwt/version", 'the request target\'s authority holds user info ("...@localhost"): it must be a host with an optional port'],
      ["http://user:pass-5ecret@localhost:8080/jwt/version", 'the request target\'s authority holds user info ("...@localhost:8080"): it must be a host with an optional port'],
      ["http://:8080/jwt/version", 'the request target\'s authority ":8080" is not a host with an optional port'],
      ["http:///jwt/version", 'the request target\'s authority "" is not a host with an optional port'],
      ["http://local%zzhost/jwt/version", 'the request target\'s authority "local%zzhost" is not a host with an optional port'],
      ["http://[::1/jwt/version", 'the request target\'s authority "[::1" is not a host with an optional port'],
      // The scheme and the authority were quoted whole and raw: unbounded, a quote left as it
      // was, the admin token or a JWT as sent. They are quoted as every request value is: at
      // most 64 characters, JSON-escaped, "*" for a credential's shape or a configured secret.
      [`${"s".repeat(100)}://localhost/jwt/version`, `the request target's scheme "${"s".repeat(64)}"... (100 characters) is not http or https`],
      [`${tokenShaped}://localhost/jwt/version`, "the request target's scheme * is not http or https"],
      [`http://${"h".repeat(300)}:x/jwt/version`, `the request target's authority "${"h".repeat(64)}"... (302 characters) is not a host with an optional port`],
      [`http://${testAdminToken}:x/jwt/version`, "the request target's authority * is not a host with an optional port"],
      [`http://${jwtShaped}:x/jwt/version`, "the request target's authority * is not a host with an optional port"],
      [`http://user@${jwtShaped}/jwt/version`, "the request target's authority holds user info (*): it must be a host with an optional port"],
    ] as const) {
      it(`${target}: 400 MALFORMED_REQUEST naming the problem`, async () => {
        const a = await exchange(server.port, `GET ${target} HTTP/1.1\r\nhost: localhost\r\n\r\n`);
        assert.equal(a.status, 400, a.body);
        assert.equal(a.headers["content-type"], "application/json");
        assert.deepEqual(json(a), { code: "invalid_argument", message, details: [errorInfoJson("MALFORMED_REQUEST")] });
      });
    }
  });
  describe("the Host header (RFC 9112 3.2: 400 to an HTTP/1.1 request without one, to any with two or an invalid one)", () => {
    const refused = (a: WireAnswer, message: string) => {
      assert.equal(a.status, 400, a.body);
      assert.equal(a.headers["content-type"], "application/json");
      assert.match(a.headers["x-request-id"] ?? "", /^[0-9a-f-]{36}$/);
      assert.deepEqual(JSON.parse(a.body), { code: "invalid_argument", message, details: [errorInfoJson("MALFORMED_REQUEST")] });
    };

    // Node's parser kept the first Host line and dropped the second: served as if one was sent.
    for (const [name, request] of [
      ["REST", "GET /jwt/version HTTP/1.1\r\nhost: localhost\r\nhost: other.example\r\n\r\n"],
      ["the same value twice", "GET /jwt/version HTTP/1.1\r\nHost: localhost\r\nhost: localhost\r\n\r\n"],
      ["an RPC path (Connect)", "POST /tessera.jwt.v1.JwtService/GetVersion HTTP/1.1\r\nhost: a.example\r\ncontent-type: application/json\r\nhost: b.example\r\ncontent-length: 2\r\n\r\n{}"],
      ["a target in absolute form", "GET http://localhost/jwt/version HTTP/1.1\r\nhost: localhost\r\nhost: localhost\r\n\r\n"],
      ["HTTP/1.0", "GET /jwt/version HTTP/1.0\r\nhost: localhost\r\nhost: other.example\r\n\r\n"],
    ] as const) {
      it(`two Host lines, ${name}: 400 MALFORMED_REQUEST naming the problem`, async () => {
        refused(await exchange(server.port, request), "the request has 2 Host headers: it must have one");
      });
    }

    // Node kept only the first 2000 header lines (its maxHeadersCount) and dropped the rest
    // unseen, a second Host among them: the header block's size (16 KiB) is the bound.
    it("two Host lines, the second after 2000 other header lines: 400 MALFORMED_REQUEST naming the problem", async () => {
      const filler = "a:\r\n".repeat(2000);
      refused(await exchange(server.port, `GET /jwt/version HTTP/1.1\r\nhost: localhost\r\n${filler}host: other.example\r\n\r\n`), "the request has 2 Host headers: it must have one");
    });

    // Node answered a bare 400 itself (no body, no request id).
    it("HTTP/1.1 without Host: 400 MALFORMED_REQUEST naming the problem (REST and an RPC path)", async () => {
      refused(await exchange(server.port, "GET /jwt/version HTTP/1.1\r\n\r\n"), "an HTTP/1.1 request must have a Host header");
      refused(
        await exchange(server.port, "POST /tessera.jwt.v1.JwtService/GetVersion HTTP/1.1\r\ncontent-type: application/json\r\ncontent-length: 2\r\n\r\n{}"),
        "an HTTP/1.1 request must have a Host header",
      );
    });

    it("Host with user info (it may be a credential: not quoted back): 400 MALFORMED_REQUEST naming the problem", async () => {
      for (const [host, shown] of [["user@localhost", "...@localhost"], ["user:pass-5ecret@localhost:80", "...@localhost:80"], ["a@b@localhost", "...@localhost"]]) {
        refused(await exchange(server.port, `GET /jwt/version HTTP/1.1\r\nhost: ${host}\r\n\r\n`), `the Host header holds user info (${JSON.stringify(shown)}): it must be a host with an optional port`);
      }
    });

    // The Host was quoted whole (a header block holds 16 KiB), its C1 controls as sent, the
    // admin token as sent: quoted as every request value is now.
    for (const [host, shown] of [
      [`${"h".repeat(300)}:x`, `"${"h".repeat(64)}"... (302 characters)`],
      ["local\x85host", '"local\\u0085host"'],
      [`${testAdminToken}:x`, "*"],
      [`${jwtShaped}:8080:1`, "*"],
    ] as const) {
      it(`Host ${JSON.stringify(host.slice(0, 40))}: 400 MALFORMED_REQUEST quoting it bounded, escaped, never a secret`, async () => {
        refused(await exchange(server.port, `GET /jwt/version HTTP/1.1\r\nhost: ${host}\r\n\r\n`), `the Host header ${shown} is not a host with an optional port`);
      });
    }

    for (const host of ["local host", "localhost/jwt", "[::1", "localhost:99999", "local%zzhost", ":8080"]) {
      it(`Host ${JSON.stringify(host)}: 400 MALFORMED_REQUEST naming it`, async () => {
        refused(await exchange(server.port, `GET /jwt/version HTTP/1.1\r\nhost: ${host}\r\n\r\n`), `the Host header ${JSON.stringify(host)} is not a host with an optional port`);
      });
    }

    it("one valid Host (a name, IPv4, IPv6, with a port, empty) is served; HTTP/1.0 without Host too", async () => {
      for (const host of ["localhost", `127.0.0.1:${server.port}`, "[::1]:8080", "tessera.internal:", ""]) {
        const a = await exchange(server.port, `GET /jwt/version HTTP/1.1\r\nhost: ${host}\r\n\r\n`);
        assert.equal(a.status, 200, `${host}: ${a.body}`);
      }
      const a = await exchange(server.port, "GET /jwt/version HTTP/1.0\r\n\r\n");
      assert.equal(a.status, 200, a.body);
    });
  });
  describe("the asterisk form (RFC 9112 3.2.4): OPTIONS * asks about the server as a whole", () => {
    const allow = "GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS";

    // It was 404 ROUTE_NOT_FOUND ("no route for OPTIONS *").
    it("HTTP/1.1 OPTIONS *: 204 with Allow, the connection kept", async () => {
      const a = await exchange(server.port, "OPTIONS * HTTP/1.1\r\nhost: localhost\r\n\r\n", 300);
      assert.equal(a.status, 204, a.body);
      assert.equal(a.headers.allow, allow);
      assert.match(a.headers["x-request-id"] ?? "", /^[0-9a-f-]{36}$/);
      assert.equal(a.body, "");
      assert.equal(a.closed, false);
    });

    it("HTTP/2 OPTIONS (:path *): 204 with Allow", async () => {
      const session = http2.connect(server.url);
      try {
        const headers = await new Promise<http2.IncomingHttpHeaders>((resolve, reject) => {
          const stream = session.request({ ":method": "OPTIONS", ":path": "*" });
          let h: http2.IncomingHttpHeaders = {};
          stream.on("response", (x) => (h = x));
          stream.on("end", () => resolve(h));
          stream.on("error", reject);
          stream.resume();
        });
        assert.equal(headers[":status"], 204);
        assert.equal(headers.allow, allow);
      } finally {
        // This client never ends the request's stream: the server resets it with NO_ERROR once the
        // 204 is out (test/server/h2-early-answers.test.ts), so close() does not wait for it.
        session.close();
      }
    });

    // It was 404 ROUTE_NOT_FOUND: the target names no resource (nghttp2 resets such an HTTP/2 stream).
    for (const method of ["GET", "POST", "DELETE"]) {
      it(`${method} *: 400 MALFORMED_REQUEST naming the problem`, async () => {
        const a = await exchange(server.port, `${method} * HTTP/1.1\r\nhost: localhost\r\ncontent-length: 0\r\n\r\n`);
        assert.equal(a.status, 400, a.body);
        assert.deepEqual(JSON.parse(a.body), {
          code: "invalid_argument",
          message: `the request target "*" (asterisk form) is for OPTIONS only, not ${method}`,
          details: [errorInfoJson("MALFORMED_REQUEST")],
        });
      });
    }

    // Node's parser takes a target that starts with "*" and goes on: it was routed as a path and
    // quoted whole in a 404 ("no route for GET *5ecret-token/jwt/version"). It is no request
    // target of any form (RFC 9112 3.2): refused without quoting it, on every method.
    for (const [method, target] of [["GET", "*5ecret-token"], ["OPTIONS", "*/5ecret-token"], ["POST", "*/tessera.jwt.v1.JwtService/GetVersion"]]) {
      it(`${method} ${target}: 400 MALFORMED_REQUEST, the target not quoted`, async () => {
        const a = await exchange(server.port, `${method} ${target} HTTP/1.1\r\nhost: localhost\r\ncontent-type: application/json\r\ncontent-length: 2\r\n\r\n{}`);
        assert.equal(a.status, 400, a.body);
        assert.deepEqual(JSON.parse(a.body), {
          code: "invalid_argument",
          message: "the request target is in no form HTTP/1.1 has: it must be a path (origin form), an absolute URI or, for OPTIONS, \"*\"",
          details: [errorInfoJson("MALFORMED_REQUEST")],
        });
      });
    }

    describe("with CORS (TESSERA_CORS_ORIGINS)", () => {
      let withCors: TestServer;
      before(async () => {
        withCors = await startTestServer({ env: { TESSERA_CORS_ORIGINS: "https://app.example" } });
      });
      after(async () => {
        await withCors?.close();
      });

      it("a preflight (to a path, or to *) is still answered by CORS; a plain OPTIONS * with Origin gets Allow and the CORS headers", async () => {
        for (const target of ["/session", "*"]) {
          const a = await exchange(withCors.port, `OPTIONS ${target} HTTP/1.1\r\nhost: localhost\r\norigin: https://app.example\r\naccess-control-request-method: POST\r\n\r\n`);
          assert.equal(a.status, 204, target);
          assert.equal(a.headers["access-control-allow-origin"], "https://app.example", target);
          assert.equal(a.headers["access-control-allow-methods"], "GET, POST, PUT, PATCH, DELETE", target);
          assert.equal(a.headers.allow, undefined, target);
        }
        const a = await exchange(withCors.port, "OPTIONS * HTTP/1.1\r\nhost: localhost\r\norigin: https://app.example\r\n\r\n");
        assert.equal(a.status, 204);
        assert.equal(a.headers.allow, allow);
        assert.equal(a.headers["access-control-allow-origin"], "https://app.example");
        assert.equal(a.headers.vary, "Origin");
      });
    });
  });
  describe("bytes Node's parser refuses: the JSON error naming the problem, then the connection closes", () => {
    // Node answered each with a bare status line ("HTTP/1.1 400 Bad Request", connection: close):
    // no body saying what was wrong, no request id.
    const refused = (a: WireAnswer, status: number, code: string, reason: string, message: string | RegExp) => {
      assert.equal(a.status, status, a.body);
      assert.equal(a.headers["content-type"], "application/json");
      assert.equal(a.headers.connection, "close");
      assert.match(a.headers["x-request-id"] ?? "", /^[0-9a-f-]{36}$/);
      const body = JSON.parse(a.body) as { code: string; message: string; details: unknown };
      assert.equal(body.code, code);
      if (typeof message === "string") assert.equal(body.message, message);
      else assert.match(body.message, message);
      assert.deepEqual(body.details, [errorInfoJson(reason)]);
      assert.equal(a.closed, true);
    };

    for (const [name, request, llhttpCode] of [
      ["a request line with junk after the version", "GET /jwt/version HTTP/1.1 junk\r\nhost: localhost\r\n\r\n", "HPE_INVALID_VERSION"],
      ["a method that is no token", "G@T /jwt/version HTTP/1.1\r\nhost: localhost\r\n\r\n", "HPE_INVALID_METHOD"],
      ["a header name with a space", "GET /jwt/version HTTP/1.1\r\nhost: localhost\r\nbad header: x\r\n\r\n", "HPE_INVALID_HEADER_TOKEN"],
      ["two different Content-Lengths", "POST /user HTTP/1.1\r\nhost: localhost\r\ncontent-length: 1\r\ncontent-length: 2\r\n\r\n{}", "HPE_UNEXPECTED_CONTENT_LENGTH"],
      ["a chunk size that is no number (the body of a REST call)", "POST /jwt/user HTTP/1.1\r\nhost: localhost\r\ncontent-type: application/json\r\ntransfer-encoding: chunked\r\n\r\nzz\r\n", "HPE_INVALID_CHUNK_SIZE"],
    ] as const) {
      it(`${name}: 400 MALFORMED_REQUEST naming llhttp's ${llhttpCode}`, async () => {
        const a = await exchange(server.port, request, 1000);
        refused(a, 400, "invalid_argument", "MALFORMED_REQUEST", new RegExp(`^the request is not valid HTTP/1\\.1: [A-Za-z][^()]* \\(${llhttpCode}\\)$`));
      });
    }

    // Node wrote its 400 at once, in place of the answers still due to the requests pipelined
    // before the bytes it refused (or cut the one being sent), though those requests were carried
    // out: a sign-up made was answered "not valid HTTP/1.1". They are answered first, in order,
    // and the 400 follows them.
    for (const [name, tail, status, message] of [
      ["a method that is no token", "G@T /jwt/version HTTP/1.1\r\nhost: localhost\r\n\r\n", "HTTP/1.1 400 Bad Request", "the request is not valid HTTP/1.1: Invalid method encountered (HPE_INVALID_METHOD)"],
      ["the HTTP/2 preface", "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", "HTTP/1.1 400 Bad Request", "the request is not valid HTTP/1.1: Pause on PRI/Upgrade (HPE_PAUSED_H2_UPGRADE)"],
      ["a header block over 16 KiB", `GET /jwt/version HTTP/1.1\r\nhost: localhost\r\nx-big: ${"a".repeat(20_000)}\r\n\r\n`, "HTTP/1.1 431 Request Header Fields Too Large", "the request's header block is larger than 16384 bytes"],
    ] as const) {
      it(`${name}, pipelined after a sign-up and a GET /openapi.json: those answered first (201, 200 whole), then the JSON error, and the connection closes`, async () => {
        const email = uniqueEmail("refused-after");
        const body = JSON.stringify({ email, password });
        const c = rawConnection(server.port);
        try {
          c.write(
            `POST /user HTTP/1.1\r\nhost: localhost\r\nx-koms-clientid: test-client\r\ncontent-type: application/json\r\ncontent-length: ${body.length}\r\n\r\n${body}` +
              "GET /openapi.json HTTP/1.1\r\nhost: localhost\r\n\r\n" +
              tail,
          );
          const answers = answersOf(await c.closed());
          assert.deepEqual(
            answers.map((a) => a.statusLine),
            ["HTTP/1.1 201 Created", "HTTP/1.1 200 OK", status],
          );
          assert.deepEqual(JSON.parse(answers[0]!.body), { message: "User created" });
          assert.doesNotThrow(() => JSON.parse(answers[1]!.body), "the OpenAPI document, whole");
          assert.match(answers[2]!.head, /\r\nconnection: close\r\n/);
          assert.equal((JSON.parse(answers[2]!.body) as { message: string }).message, message);
        } finally {
          c.destroy();
        }
      });
    }

    const bigHeader = (length: number) => `GET /jwt/version HTTP/1.1\r\nhost: localhost\r\nx-big: ${"a".repeat(length)}\r\n\r\n`;
    const tooLarge = (a: WireAnswer) => refused(a, 431, "resource_exhausted", "REQUEST_TOO_LARGE", "the request's header block is larger than 16384 bytes");

    it("a header block over 16 KiB: 431 REQUEST_TOO_LARGE naming the limit", async () => {
      tooLarge(await exchange(server.port, bigHeader(20_000), 1000));
    });

    // Over TLS the answer is written while the TLS layer is still handing over the read that
    // brought the refused bytes: the socket destroyed at once never sent it, and the client saw
    // the connection close unanswered.
    describe("over TLS (records of at most 16 KiB): the same answers", () => {
      let cert: TestCertificate;
      let secure: TestServer;
      before(async () => {
        cert = makeTestCertificate();
        secure = await startTestServer({ env: cert.env });
      });
      after(async () => {
        await secure?.close();
        cert?.remove();
      });
      const overTls: Connector = (port, onConnect) => tls.connect({ port, host: "127.0.0.1", ca: cert.ca, servername: "localhost", ALPNProtocols: ["http/1.1"] }, onConnect);
      for (const [name, text, check] of [
        ["a method that is no token: 400", "G@T /jwt/version HTTP/1.1\r\nhost: localhost\r\n\r\n", (a: WireAnswer) => refused(a, 400, "invalid_argument", "MALFORMED_REQUEST", "the request is not valid HTTP/1.1: Invalid method encountered (HPE_INVALID_METHOD)")],
        ["a 20 KB header field in one write: 431", bigHeader(20_000), tooLarge],
        ["a 40 KB header field in one write: 431", bigHeader(40_000), tooLarge],
      ] as const) {
        it(name, async () => check(await exchange(secure.port, text, 1000, overTls)));
      }
    });

    it("a client that resets its connection mid-request gets nothing, and nothing is logged", async () => {
      const logged = server.logs.length;
      const socket = net.connect(server.port, "127.0.0.1");
      await new Promise<void>((resolve) => socket.once("connect", () => resolve()));
      const received: Buffer[] = [];
      socket.on("data", (d: Buffer) => received.push(d));
      socket.write("POST /jwt/user HTTP/1.1\r\nhost: localhost\r\ncontent-length: 100\r\n\r\n{");
      await new Promise((r) => setTimeout(r, 50));
      socket.resetAndDestroy();
      await new Promise((r) => setTimeout(r, 50));
      assert.equal(Buffer.concat(received).toString("latin1"), "");
      assert.deepEqual(server.logs.slice(logged), []);
    });

    describe("at the headers and request timeouts (1 s, 1.5 s)", () => {
      let timed: TestServer;
      before(async () => {
        timed = await startTestServer({ env: { TESSERA_HEADERS_TIMEOUT_MS: "1000", TESSERA_REQUEST_TIMEOUT_MS: "1500", TESSERA_IDLE_TIMEOUT_MS: "1000" } });
      });
      after(async () => {
        await timed?.close();
      });
      afterEach(() => {
        assert.deepEqual(timed.logs.filter((l) => (JSON.parse(l) as { level: string }).level === "error"), []);
      });

      const message = "the request did not arrive in time: its headers are due within 1000 ms, all of it within 1500 ms";
      it("headers that never end: 408 DEADLINE_EXCEEDED naming the timeouts", async () => {
        const a = await exchange(timed.port, "GET /jwt/version HTTP/1.1\r\nhost: localhost\r\nx-slow: a", 1000);
        refused(a, 408, "deadline_exceeded", "DEADLINE_EXCEEDED", message);
      });

      it("a body that never ends: 408 DEADLINE_EXCEEDED naming the timeouts", async () => {
        const a = await exchange(timed.port, "POST /jwt/user HTTP/1.1\r\nhost: localhost\r\ncontent-type: application/json\r\ncontent-length: 100\r\n\r\n{", 1000);
        refused(a, 408, "deadline_exceeded", "DEADLINE_EXCEEDED", message);
      });

      // An answer that need not wait for the body (a call past its deadline, an unknown method)
      // is the request's one answer: the request timeout then closes the connection without
      // writing a 408 after it, which a client would take for the answer to its next request.
      for (const [name, head, status] of [
        ["Connect, connect-timeout-ms 300", "POST /tessera.jwt.v1.JwtService/GetVersion HTTP/1.1\r\ncontent-type: application/json\r\nconnect-timeout-ms: 300", 504],
        ["gRPC-Web, grpc-timeout 300m", "POST /tessera.jwt.v1.JwtService/GetVersion HTTP/1.1\r\ncontent-type: application/grpc-web+proto\r\ngrpc-timeout: 300m", 200],
        ["gRPC-Web, an unknown method", "POST /tessera.jwt.v1.JwtService/Nothing HTTP/1.1\r\ncontent-type: application/grpc-web+proto", 200],
      ] as const) {
        it(`a body that never ends, answered before it ends (${name}): that answer alone, then the connection closes at the request timeout`, async () => {
          const socket = net.connect(timed.port, "127.0.0.1");
          let data = "";
          socket.on("data", (d: Buffer) => (data += d.toString("latin1")));
          socket.write(`${head}\r\nhost: localhost\r\ncontent-length: 100\r\n\r\n{`);
          const closed = await new Promise<boolean>((resolve) => {
            const timer = setTimeout(() => resolve(false), 4000);
            socket.on("close", () => {
              clearTimeout(timer);
              resolve(true);
            });
          });
          socket.destroy();
          assert.deepEqual(data.match(/HTTP\/1\.1 \d{3}/g), [`HTTP/1.1 ${status}`], data);
          assert.ok(closed, "the connection was not closed");
        });
      }
    });
  });
  describe("a target in absolute form on TESSERA_METRICS_PORT", () => {
    let withMetricsPort: TestServer;
    before(async () => {
      withMetricsPort = await startTestServer({ env: { TESSERA_METRICS_PORT: "0" } });
    });
    after(async () => {
      await withMetricsPort?.close();
    });

    it("GET http://host/metrics is the scrape; another scheme is 400", async () => {
      const port = withMetricsPort.tessera.server.metricsPort!;
      const a = await exchange(port, `GET http://localhost:${port}/metrics HTTP/1.1\r\nhost: localhost\r\nconnection: close\r\n\r\n`);
      assert.equal(a.status, 200, a.body);
      assert.match(a.body, /^# HELP /m);
      const bad = await exchange(port, `GET ftp://localhost/metrics HTTP/1.1\r\nhost: localhost\r\nconnection: close\r\n\r\n`);
      assert.equal(bad.status, 400);
      assert.deepEqual(JSON.parse(bad.body), { code: "invalid_argument", message: 'the request target\'s scheme "ftp" is not http or https', details: [errorInfoJson("MALFORMED_REQUEST")] });
    });

    it("bytes Node's parser refuses: 400 naming the problem", async () => {
      const port = withMetricsPort.tessera.server.metricsPort!;
      const a = await exchange(port, "GET /metrics HTTP/1.1\r\nhost: localhost\r\nbad header: x\r\n\r\n");
      assert.equal(a.status, 400);
      assert.deepEqual(JSON.parse(a.body), { code: "invalid_argument", message: "the request is not valid HTTP/1.1: Invalid header token (HPE_INVALID_HEADER_TOKEN)", details: [errorInfoJson("MALFORMED_REQUEST")] });
    });

    it("OPTIONS *: 204 with Allow", async () => {
      const port = withMetricsPort.tessera.server.metricsPort!;
      const a = await exchange(port, "OPTIONS * HTTP/1.1\r\nhost: localhost\r\nconnection: close\r\n\r\n");
      assert.equal(a.status, 204);
      assert.equal(a.headers.allow, "GET, HEAD, OPTIONS");
    });

    it("two Host lines, or none in HTTP/1.1: 400 naming the problem", async () => {
      const port = withMetricsPort.tessera.server.metricsPort!;
      const two = await exchange(port, "GET /metrics HTTP/1.1\r\nhost: localhost\r\nhost: other.example\r\nconnection: close\r\n\r\n");
      assert.equal(two.status, 400);
      assert.deepEqual(JSON.parse(two.body), { code: "invalid_argument", message: "the request has 2 Host headers: it must have one", details: [errorInfoJson("MALFORMED_REQUEST")] });
      const none = await exchange(port, "GET /metrics HTTP/1.1\r\nconnection: close\r\n\r\n");
      assert.equal(none.status, 400);
      assert.deepEqual(JSON.parse(none.body), { code: "invalid_argument", message: "an HTTP/1.1 request must have a Host header", details: [errorInfoJson("MALFORMED_REQUEST")] });
    });
  });
  describe("CONNECT: this server opens no tunnels", () => {
    const expected = { code: "unimplemented", message: "CONNECT is not allowed: this server opens no tunnels", details: [errorInfoJson("METHOD_NOT_ALLOWED")] };

    // Node's HTTP/1.1 server hands CONNECT to "connect" listeners only: without one it
    // destroyed the socket, not a byte written.
    it("HTTP/1.1: 405 with Allow and the JSON error, then the connection closes", async () => {
      const a = await exchange(server.port, "CONNECT localhost:443 HTTP/1.1\r\nhost: localhost:443\r\n\r\n", 1000);
      assert.equal(a.status, 405);
      assert.equal(a.headers.allow, "GET, HEAD, POST, PUT, PATCH, DELETE");
      assert.equal(a.headers["content-type"], "application/json");
      assert.match(a.headers["x-request-id"] ?? "", /^[0-9a-f-]{36}$/);
      assert.deepEqual(JSON.parse(a.body), expected);
      assert.equal(a.closed, true);
    });

    it("HTTP/1.1: tunnel bytes sent right after the request do not keep the answer from the client", async () => {
      const a = await exchange(server.port, `CONNECT localhost:443 HTTP/1.1\r\nhost: localhost:443\r\n\r\n\x16\x03\x01${"x".repeat(4096)}`, 1000);
      assert.equal(a.status, 405);
      assert.deepEqual(JSON.parse(a.body), expected);
      assert.equal(a.closed, true);
    });

    // Node hands the socket to the "connect" listener as soon as it has parsed the CONNECT, while
    // the answer to a request pipelined before it may still hold the socket: the 405 assigned to
    // it then threw (ERR_HTTP_SOCKET_ASSIGNED), uncaught, and the process ended. It is answered in
    // its turn, after the answers before it, as any pipelined request; one larger than the
    // socket's buffer (the OpenAPI document, 120 KB) goes out whole first, though Node no longer
    // serves the socket.
    for (const path of ["/jwt/version", "/openapi.json"]) {
      it(`HTTP/1.1, pipelined after a GET ${path}: the GET answered first, then the 405, and the connection closes`, async () => {
        const c = rawConnection(server.port);
        try {
          c.write(`GET ${path} HTTP/1.1\r\nhost: localhost\r\n\r\nCONNECT localhost:443 HTTP/1.1\r\nhost: localhost:443\r\n\r\n`);
          const answers = answersOf(await c.closed());
          assert.deepEqual(
            answers.map((a) => a.statusLine),
            ["HTTP/1.1 200 OK", "HTTP/1.1 405 Method Not Allowed"],
          );
          assert.doesNotThrow(() => JSON.parse(answers[0]!.body), "the GET's answer, whole");
          assert.match(answers[1]!.head, /\r\nallow: GET, HEAD, POST, PUT, PATCH, DELETE\r\n/);
          assert.deepEqual(JSON.parse(answers[1]!.body), expected);
        } finally {
          c.destroy();
        }
      });
    }

    // Node's HTTP/2 server answered 405 itself, without Allow (which a 405 must carry) or a body.
    it("HTTP/2: 405 with Allow and the JSON error", async () => {
      const session = http2.connect(server.url);
      try {
        const stream = session.request({ ":method": "CONNECT", ":authority": "localhost:443" }, { endStream: false });
        const [headers, body] = await new Promise<[http2.IncomingHttpHeaders, string]>((resolve, reject) => {
          let h: http2.IncomingHttpHeaders = {};
          let text = "";
          stream.on("response", (x) => (h = x));
          stream.on("data", (d: Buffer) => (text += d.toString()));
          stream.on("end", () => resolve([h, text]));
          stream.on("error", reject);
          stream.end();
        });
        assert.equal(headers[":status"], 405);
        assert.equal(headers.allow, "GET, HEAD, POST, PUT, PATCH, DELETE");
        assert.equal(headers["content-type"], "application/json");
        assert.deepEqual(JSON.parse(body), expected);
      } finally {
        session.close();
      }
    });
  });
  /** One HTTP/2 request on a connection of its own: its response headers and body. */
  const h2Request = (headers: http2.OutgoingHttpHeaders, body?: string) =>
    new Promise<{ headers: http2.IncomingHttpHeaders; body: string }>((resolve, reject) => {
      const session = http2.connect(server.url);
      const stream = session.request(headers);
      let h: http2.IncomingHttpHeaders = {};
      let text = "";
      stream.on("response", (x) => (h = x));
      stream.on("data", (d: Buffer) => (text += d.toString()));
      stream.on("end", () => {
        session.close();
        resolve({ headers: h, body: text });
      });
      stream.on("error", (e) => {
        session.close();
        reject(e);
      });
      stream.end(body);
    });
  /**
   * One HTTP/2 request expecting 100-continue: the informational statuses that came before the
   * answer, then the answer. `body` is sent once a 100 came (never without one).
   */
  const h2Continue = (headers: http2.OutgoingHttpHeaders, body?: string) =>
    new Promise<{ informational: number[]; headers: http2.IncomingHttpHeaders; body: string }>((resolve, reject) => {
      const session = http2.connect(server.url);
      const stream = session.request(headers, { endStream: false });
      const informational: number[] = [];
      let h: http2.IncomingHttpHeaders = {};
      let text = "";
      stream.on("headers", (x) => {
        informational.push(Number(x[":status"]));
        if (x[":status"] === 100 && body !== undefined) stream.end(body);
      });
      stream.on("response", (x) => (h = x));
      stream.on("data", (d: Buffer) => (text += d.toString()));
      stream.on("close", () => {
        session.close();
        resolve({ informational, headers: h, body: text });
      });
      stream.on("error", (e) => {
        session.close();
        reject(e);
      });
    });
  describe("HTTP/2 :scheme: http or https, as the absolute form's scheme", () => {
    const request = h2Request;

    // They were served as if the scheme were http.
    for (const [scheme, headers, body] of [
      ["ftp", { ":method": "GET", ":path": "/jwt/version" }, undefined],
      ["ws", { ":method": "POST", ":path": "/tessera.jwt.v1.JwtService/GetVersion", "content-type": "application/json" }, "{}"],
      ["mailto", { ":method": "GET", ":path": "/healthz" }, undefined],
    ] as const) {
      it(`:scheme ${scheme}: 400 MALFORMED_REQUEST naming it (${headers[":path"]})`, async () => {
        const a = await request({ ...headers, ":scheme": scheme, ":authority": "localhost" }, body);
        assert.equal(a.headers[":status"], 400, a.body);
        assert.equal(a.headers["content-type"], "application/json");
        assert.deepEqual(JSON.parse(a.body), { code: "invalid_argument", message: `the request's :scheme "${scheme}" is not http or https`, details: [errorInfoJson("MALFORMED_REQUEST")] });
      });
    }

    it("http and https in any case are served (the connection, not :scheme, says whether it is TLS)", async () => {
      for (const scheme of ["http", "https", "HTTP"]) {
        const a = await request({ ":method": "GET", ":path": "/jwt/version", ":scheme": scheme, ":authority": "localhost" });
        assert.equal(a.headers[":status"], 200, `${scheme}: ${a.body}`);
      }
    });
  });
  describe("HTTP/2 :authority: refused as an invalid Host is, on every path", () => {
    const request = h2Request;
    const paths = [
      ["REST", { ":method": "GET", ":path": "/jwt/version" }, undefined],
      ["a probe", { ":method": "GET", ":path": "/healthz" }, undefined],
      ["an RPC path (Connect)", { ":method": "POST", ":path": "/tessera.jwt.v1.JwtService/GetVersion", "content-type": "application/json" }, "{}"],
    ] as const;

    // What nghttp2 lets through (it resets a stream whose :authority has a space, a quote or
    // nothing): a REST path served it as if it were valid, an RPC path took user info.
    it(":authority with user info (it may be a credential: not quoted back): 400 MALFORMED_REQUEST naming the problem (REST, a probe, an RPC path)", async () => {
      for (const [where, headers, body] of paths) {
        const a = await request({ ...headers, ":authority": "user:pass-5ecret@localhost" }, body);
        assert.equal(a.headers[":status"], 400, `${where}: ${a.body}`);
        assert.deepEqual(JSON.parse(a.body), { code: "invalid_argument", message: 'the :authority holds user info ("...@localhost"): it must be a host with an optional port', details: [errorInfoJson("MALFORMED_REQUEST")] }, where);
      }
    });

    for (const authority of ["[::1", "localhost:99999", "local%zzhost", ":8080", "localhost:80:80", "[zz]"]) {
      it(`:authority ${JSON.stringify(authority)}: 400 MALFORMED_REQUEST naming it, as HTTP/1.1's Host (REST, a probe, an RPC path)`, async () => {
        for (const [where, headers, body] of paths) {
          const a = await request({ ...headers, ":authority": authority }, body);
          assert.equal(a.headers[":status"], 400, `${where}: ${a.body}`);
          assert.equal(a.headers["content-type"], "application/json");
          assert.match(String(a.headers["x-request-id"]), /^[0-9a-f-]{36}$/);
          assert.deepEqual(JSON.parse(a.body), { code: "invalid_argument", message: `the :authority ${JSON.stringify(authority)} is not a host with an optional port`, details: [errorInfoJson("MALFORMED_REQUEST")] }, where);
        }
      });
    }

    it("a valid :authority (a name, IPv4, IPv6, with a port) is served on every path", async () => {
      for (const authority of ["localhost", `127.0.0.1:${server.port}`, "[::1]:8080", "tessera.internal:"]) {
        for (const [where, headers, body] of paths) {
          const a = await request({ ...headers, ":authority": authority }, body);
          assert.equal(a.headers[":status"], 200, `${authority} ${where}: ${a.body}`);
        }
      }
    });
  });
  describe("HTTP/2 :path: a byte no request target has is refused, as HTTP/1.1's parser refuses it", () => {
    const request = h2Request;
    // nghttp2 lets bytes 0x80-0xFF through in :path (it resets a stream whose :path has a space or
    // a control character); Node reads them as Latin-1. Such a path was served (a token
    // variable took the bytes as Latin-1 text, a 404 quoted them), where the same bytes in an
    // HTTP/1.1 request line are 400 MALFORMED_REQUEST.
    const message = "the request's :path holds a byte outside visible ASCII, which no request target has: such bytes are sent percent-encoded";
    for (const [where, headers, body] of [
      ["REST, a path variable", { ":method": "GET", ":path": "/api/authenticationtoken/SECRET\u00e9/user" }, undefined],
      ["REST, a query value", { ":method": "GET", ":path": "/jwt/check?access_token=SECRET\u00ff" }, undefined],
      ["REST, no route", { ":method": "GET", ":path": "/SECRET\u00c3\u00a9" }, undefined],
      ["a probe", { ":method": "GET", ":path": "/healthz?\u0080" }, undefined],
      ["an RPC path (Connect)", { ":method": "POST", ":path": "/tessera.jwt.v1.JwtService/GetVersion?SECRET\u00e9", "content-type": "application/json" }, "{}"],
    ] as const) {
      it(`${where}: 400 MALFORMED_REQUEST naming the problem, the path not quoted`, async () => {
        const a = await request(headers, body);
        assert.equal(a.headers[":status"], 400, a.body);
        assert.equal(a.headers["content-type"], "application/json");
        assert.match(String(a.headers["x-request-id"]), /^[0-9a-f-]{36}$/);
        assert.ok(!a.body.includes("SECRET"), a.body);
        assert.deepEqual(JSON.parse(a.body), { code: "invalid_argument", message, details: [errorInfoJson("MALFORMED_REQUEST")] });
      });
    }

    it("the same path percent-encoded is served", async () => {
      const a = await request({ ":method": "GET", ":path": "/jwt/version?%C3%A9" });
      assert.equal(a.headers[":status"], 400, a.body);
      assert.equal((JSON.parse(a.body) as { message: string }).message, 'unknown query parameter "\u00e9"');
    });
  });
  describe("a \"#\" in the target: no request target has one (RFC 9112 3.2), over HTTP/1.1 and HTTP/2", () => {
    // Node's HTTP/1.1 parser and nghttp2 let it through, and the transcoder read it as text: the
    // password of GET /jwt/token?user=ann&pass=pw#x was "pw#x", where a proxy in front that parses
    // the URL (WHATWG) drops "#x" as a fragment. A client sends no fragment, and a "#" in a path
    // or a query percent-encoded (%23).
    const message = 'the request target holds a "#", which no request target has: a fragment is not sent, and a "#" in a path or a query is sent percent-encoded (%23)';
    const targets = [
      ["REST, a query value", "/jwt/token?user=ann&pass=SECRET#x"],
      ["REST, a path variable", "/api/authenticationtoken/SECRET#x/user"],
      ["REST, no route", "/SECRET#"],
      ["an absolute-form target", "http://localhost/jwt/version#SECRET"],
      ["an RPC path (Connect GET)", "/tessera.jwt.v1.JwtService/GetVersion?connect=v1&encoding=json&message=%7B%7D#SECRET"],
    ] as const;
    for (const [where, target] of targets) {
      it(`HTTP/1.1, ${where}: 400 MALFORMED_REQUEST naming the problem, the target not quoted`, async () => {
        const a = await exchange(server.port, `GET ${target} HTTP/1.1\r\nhost: localhost\r\n\r\n`);
        assert.equal(a.status, 400, a.body);
        assert.equal(a.headers["content-type"], "application/json");
        assert.ok(!a.body.includes("SECRET"), a.body);
        assert.deepEqual(JSON.parse(a.body), { code: "invalid_argument", message, details: [errorInfoJson("MALFORMED_REQUEST")] });
      });
      if (target.startsWith("/")) {
        it(`HTTP/2, ${where}: 400 MALFORMED_REQUEST naming the problem, the target not quoted`, async () => {
          const a = await h2Request({ ":method": "GET", ":path": target });
          assert.equal(a.headers[":status"], 400, a.body);
          assert.ok(!a.body.includes("SECRET"), a.body);
          assert.deepEqual(JSON.parse(a.body), { code: "invalid_argument", message, details: [errorInfoJson("MALFORMED_REQUEST")] });
        });
      }
    }

    it("a \"#\" percent-encoded (%23) is served as text", async () => {
      const a = await exchange(server.port, "GET /jwt/version?%23 HTTP/1.1\r\nhost: localhost\r\n\r\n");
      assert.equal(a.status, 400, a.body);
      assert.equal((JSON.parse(a.body) as { message: string }).message, 'unknown query parameter "#"');
    });
  });
  describe("a transfer coding other than chunked (RFC 9112 6.1: 501)", () => {
    // Node's parser takes "gzip, chunked" (any codings before a final chunked) and hands the
    // body over de-chunked only: the gzip bytes were read as the JSON (or Connect) body.
    for (const [where, head] of [
      ["REST", "POST /user HTTP/1.1\r\nhost: localhost\r\nx-koms-clientid: web\r\ncontent-type: application/json\r\n"],
      ["an RPC path (Connect)", "POST /tessera.jwt.v1.JwtService/GetVersion HTTP/1.1\r\nhost: localhost\r\ncontent-type: application/json\r\n"],
    ] as const) {
      for (const codings of ["gzip, chunked", "x-custom,chunked", "identity, chunked"]) {
        it(`${where}, Transfer-Encoding: ${codings}: 501 naming the coding, then the connection closes`, async () => {
          const a = await exchange(server.port, `${head}transfer-encoding: ${codings}\r\n\r\n${chunked("{}")}`, 1000);
          assert.equal(a.status, 501, a.body);
          assert.equal(a.headers["content-type"], "application/json");
          assert.match(a.headers["x-request-id"] ?? "", /^[0-9a-f-]{36}$/);
          assert.deepEqual(JSON.parse(a.body), {
            code: "unimplemented",
            message: `the transfer coding ${JSON.stringify(codings.split(",")[0]!.trim())} is not implemented: a request body is framed by chunked alone, or by Content-Length`,
            details: [errorInfoJson("UNIMPLEMENTED")],
          });
          assert.equal(a.closed, true);
        });
      }
    }

    for (const [what, coding, shown] of [
      ["the admin token", testAdminToken, "*"],
      ["300 characters", `x-${"z".repeat(298)}`, `"x-${"z".repeat(62)}"... (300 characters)`],
    ] as const) {
      it(`Transfer-Encoding of a coding of ${what}, then chunked: 501 quoting it as a request's text is quoted`, async () => {
        const a = await exchange(server.port, `POST /user HTTP/1.1\r\nhost: localhost\r\ncontent-type: application/json\r\ntransfer-encoding: ${coding}, chunked\r\n\r\n${chunked("{}")}`, 1000);
        assert.equal(a.status, 501, a.body);
        assert.deepEqual(JSON.parse(a.body), {
          code: "unimplemented",
          message: `the transfer coding ${shown} is not implemented: a request body is framed by chunked alone, or by Content-Length`,
          details: [errorInfoJson("UNIMPLEMENTED")],
        });
      });
    }

    it("Transfer-Encoding: chunked (any case) is served", async () => {
      for (const codings of ["chunked", "Chunked"]) {
        const a = await exchange(server.port, `POST /tessera.jwt.v1.JwtService/GetVersion HTTP/1.1\r\nhost: localhost\r\ncontent-type: application/json\r\ntransfer-encoding: ${codings}\r\n\r\n${chunked("{}")}`);
        assert.equal(a.status, 200, a.body);
      }
    });
  });
  describe("an answer that closes the connection: nothing read after it on that connection is served", () => {
    // Node's parser reads on past a request whose answer closes the connection, and the request
    // listener was called for each request that followed in the same read: a sign-up pipelined
    // after a 501 was carried out, its answer never sent (the connection closed first).
    const signUpRequest = (email: string) => {
      const body = JSON.stringify({ email, password });
      return `POST /user HTTP/1.1\r\nhost: localhost\r\nx-koms-clientid: test-client\r\ncontent-type: application/json\r\ncontent-length: ${body.length}\r\n\r\n${body}`;
    };
    /** Once the server has nothing in flight, the sign-up pipelined with `email` was never carried out: the email is still free. */
    const notServed = async (email: string) => {
      for (let i = 0; i < 100 && server.tessera.server.listener.inFlight() > 0; i++) await new Promise((r) => setTimeout(r, 20));
      await signUp(server, email);
    };
    for (const [name, request, status] of [
      ["Transfer-Encoding: gzip, chunked (501)", `POST /tessera.jwt.v1.JwtService/GetVersion HTTP/1.1\r\nhost: localhost\r\ncontent-type: application/json\r\ntransfer-encoding: gzip, chunked\r\n\r\n${chunked("{}")}`, 501],
      ["Expect: 100-continue with a Content-Length over the limit, the body sent all the same (413)", `POST /tessera.jwt.v1.JwtService/GetVersion HTTP/1.1\r\nhost: localhost\r\ncontent-type: application/json\r\nexpect: 100-continue\r\ncontent-length: 70000\r\n\r\n${" ".repeat(70000)}`, 413],
      // RFC 9112 6.1: an HTTP/1.0 message with Transfer-Encoding has faulty framing (an HTTP/1.0
      // intermediary may have read its body as the next request); the connection closes after it.
      ["HTTP/1.0 with Transfer-Encoding: chunked and keep-alive (served)", `POST /tessera.jwt.v1.JwtService/GetVersion HTTP/1.0\r\nhost: localhost\r\nconnection: keep-alive\r\ncontent-type: application/json\r\ntransfer-encoding: chunked\r\n\r\n${chunked("{}")}`, 200],
    ] as const) {
      it(`${name}: Connection: close, the connection closes, and a sign-up pipelined after it is not carried out`, async () => {
        const email = uniqueEmail("pipelined");
        const a = await exchange(server.port, request + signUpRequest(email), 1000);
        assert.equal(a.status, status, a.body);
        assert.equal(a.headers.connection, "close");
        assert.equal(a.closed, true);
        await notServed(email);
      });
    }

    // RFC 9112 9.6: a request with Connection: close is answered, and nothing after it is
    // processed. Node's parser refuses the bytes after it (HPE_CLOSED_CONNECTION), and its 400
    // went out in place of that request's answer, though the request was carried out.
    it("a request with Connection: close and another after it: the first answered 200, the connection closes, the other not carried out", async () => {
      const email = uniqueEmail("pipelined");
      const a = await exchange(server.port, "GET /jwt/version HTTP/1.1\r\nhost: localhost\r\nconnection: close\r\n\r\n" + signUpRequest(email), 1000);
      assert.equal(a.status, 200, a.body);
      assert.equal(typeof (JSON.parse(a.body) as { version: unknown }).version, "string");
      assert.equal(a.headers.connection, "close");
      assert.equal(a.closed, true);
      await notServed(email);
    });
  });
  describe("Expect other than 100-continue (RFC 9110 10.1.1): 417 with the JSON error naming it", () => {
    // Node answered a bare "417 Expectation Failed": no body naming the expectation, no request id.
    const message = 'the expectation "x-secret-handshake" cannot be met: this server meets only Expect: 100-continue';
    it("HTTP/1.1: 417 naming the expectation, then the connection closes", async () => {
      const a = await exchange(server.port, "POST /user HTTP/1.1\r\nhost: localhost\r\nexpect: x-secret-handshake\r\ncontent-type: application/json\r\ncontent-length: 2\r\n\r\n{}", 1000);
      assert.equal(a.status, 417, a.body);
      assert.equal(a.headers["content-type"], "application/json");
      assert.match(a.headers["x-request-id"] ?? "", /^[0-9a-f-]{36}$/);
      assert.deepEqual(JSON.parse(a.body), { code: "invalid_argument", message, details: [errorInfoJson("MALFORMED_REQUEST")] });
      assert.equal(a.closed, true);
    });

    it("HTTP/2: 417 naming the expectation", async () => {
      const a = await h2Request({ ":method": "POST", ":path": "/user", expect: "x-secret-handshake", "content-type": "application/json" }, "{}");
      assert.equal(a.headers[":status"], 417, a.body);
      assert.equal(a.headers["content-type"], "application/json");
      assert.match(String(a.headers["x-request-id"]), /^[0-9a-f-]{36}$/);
      assert.deepEqual(JSON.parse(a.body), { code: "invalid_argument", message, details: [errorInfoJson("MALFORMED_REQUEST")] });
    });
  });
  describe("Expect other than 100-continue: the expectation quoted as a request's text is quoted", () => {
    for (const [what, expect, shown] of [
      ["the admin token", `x-handshake; token=${testAdminToken}`, "*"],
      ["300 characters", `x-${"e".repeat(298)}`, `"x-${"e".repeat(62)}"... (300 characters)`],
    ] as const) {
      const message = `the expectation ${shown} cannot be met: this server meets only Expect: 100-continue`;
      it(`HTTP/1.1, an expectation of ${what}: 417`, async () => {
        const a = await exchange(server.port, `POST /user HTTP/1.1\r\nhost: localhost\r\nexpect: ${expect}\r\ncontent-type: application/json\r\ncontent-length: 2\r\n\r\n{}`, 1000);
        assert.equal(a.status, 417, a.body);
        assert.deepEqual(JSON.parse(a.body), { code: "invalid_argument", message, details: [errorInfoJson("MALFORMED_REQUEST")] });
      });

      it(`HTTP/2, an expectation of ${what}: 417`, async () => {
        const a = await h2Request({ ":method": "POST", ":path": "/user", expect, "content-type": "application/json" }, "{}");
        assert.equal(a.headers[":status"], 417, a.body);
        assert.deepEqual(JSON.parse(a.body), { code: "invalid_argument", message, details: [errorInfoJson("MALFORMED_REQUEST")] });
      });
    }
  });
  describe("Expect: 100-continue (RFC 9110 10.1.1): the 100 only for a body that will be read", () => {
    // Node sent "100 Continue" to every such request before the handler saw it: a client waiting
    // for it then sent a body the answer refused unread (a Content-Length over the limit, 413).
    const limit = 65536;
    const tooLarge = {
      code: "resource_exhausted",
      message: `request body is larger than ${limit} bytes`,
      details: [errorInfoJson("REQUEST_TOO_LARGE")],
    };
    for (const [where, head] of [
      ["REST", "POST /user HTTP/1.1\r\nhost: localhost\r\nx-koms-clientid: web\r\ncontent-type: application/json\r\n"],
      ["an RPC path (Connect)", "POST /tessera.session.v1.UserService/CreateUser HTTP/1.1\r\nhost: localhost\r\nx-koms-clientid: web\r\ncontent-type: application/json\r\n"],
    ] as const) {
      it(`${where}, a Content-Length over the limit: 413 without 100, the body never asked for, then the connection closes`, async () => {
        const c = rawConnection(server.port);
        c.write(`${head}expect: 100-continue\r\ncontent-length: ${limit + 1}\r\n\r\n`);
        const first = await c.headerBlock();
        assert.match(first, /^HTTP\/1\.1 413 Payload Too Large\r\n/, first);
        const everything = await c.closed();
        // The one answer, as sent: the 413's header block and its JSON body, nothing before it.
        const end = everything.indexOf("\r\n\r\n") + 4;
        assert.equal(everything.slice(0, end), first);
        assert.match(first, /\r\nconnection: close\r\n/i);
        assert.deepEqual(JSON.parse(everything.slice(end)), tooLarge);
      });
    }

    for (const [where, head, body, status] of [
      ["REST", "POST /jwt/user HTTP/1.1\r\nhost: localhost\r\ncontent-type: application/json\r\n", () => JSON.stringify({ user: uniqueName("continue"), pass: "violet-kettle-harbour-29" }), 201],
      ["an RPC path (Connect)", "POST /tessera.jwt.v1.JwtService/GetVersion HTTP/1.1\r\nhost: localhost\r\ncontent-type: application/json\r\n", () => "{}", 200],
      ["a body at the limit", "POST /tessera.jwt.v1.JwtService/GetVersion HTTP/1.1\r\nhost: localhost\r\ncontent-type: application/json\r\n", () => `{}${" ".repeat(limit - 2)}`, 200],
    ] as const) {
      it(`${where}, a body within the limit: 100 Continue first, then the body is read and answered`, async () => {
        const c = rawConnection(server.port);
        const text = body();
        c.write(`${head}expect: 100-continue\r\ncontent-length: ${Buffer.byteLength(text)}\r\n\r\n`);
        assert.equal(await c.headerBlock(), "HTTP/1.1 100 Continue\r\n\r\n");
        c.write(text);
        const answer = await c.headerBlock();
        assert.match(answer, new RegExp(`^HTTP/1\\.1 ${status} `), answer);
        c.destroy();
      });
    }

    // gRPC and gRPC-Web frame a message in 5 bytes more: a message at the limit is read (without
    // an Expect too), so its body is not refused for its Content-Length.
    const framedAtLimit = () => {
      // GetVersionRequest with one unknown bytes field (number 15): 1 + 3 + 65532 = limit bytes.
      const message = Buffer.concat([Buffer.from([0x7a, 0xfc, 0xff, 0x03]), Buffer.alloc(limit - 4, 0x61)]);
      const frame = Buffer.alloc(5);
      frame.writeUInt32BE(message.length, 1);
      return Buffer.concat([frame, message]).toString("latin1");
    };
    for (const expect of ["", "expect: 100-continue\r\n"]) {
      it(`gRPC-Web over HTTP/1.1, a message at the limit (a body 5 bytes over it)${expect ? ", Expect: 100-continue" : ""}: read and answered OK`, async () => {
        const c = rawConnection(server.port);
        const text = framedAtLimit();
        c.write(`POST /tessera.jwt.v1.JwtService/GetVersion HTTP/1.1\r\nhost: localhost\r\ncontent-type: application/grpc-web+proto\r\n${expect}content-length: ${Buffer.byteLength(text, "latin1")}\r\n\r\n`);
        if (expect) assert.equal(await c.headerBlock(), "HTTP/1.1 100 Continue\r\n\r\n");
        c.write(text);
        const answer = await c.headerBlock();
        assert.match(answer, /^HTTP\/1\.1 200 /, answer);
        assert.doesNotMatch(answer, /grpc-status: [1-9]/i, answer);
        c.destroy();
      });
    }

    it("HTTP/2, a content-length over the limit: 413 without 100", async () => {
      const a = await h2Continue({ ":method": "POST", ":path": "/user", "x-koms-clientid": "web", "content-type": "application/json", "content-length": String(limit + 1), expect: "100-continue" });
      assert.deepEqual(a.informational, []);
      assert.equal(a.headers[":status"], 413, a.body);
      assert.deepEqual(JSON.parse(a.body), tooLarge);
    });

    for (const expect of ["100-continue", "100-Continue"]) {
      it(`HTTP/2, Expect: ${expect} within the limit: 100 first, then the body is read and answered`, async () => {
        const a = await h2Continue({ ":method": "POST", ":path": "/tessera.jwt.v1.JwtService/GetVersion", "content-type": "application/json", "content-length": "2", expect }, "{}");
        assert.deepEqual(a.informational, [100]);
        assert.equal(a.headers[":status"], 200, a.body);
        assert.equal(typeof (JSON.parse(a.body) as { version: unknown }).version, "string");
      });
    }
  });
  describe("Upgrade: ignored (RFC 9110 7.8), the request served as it is", () => {
    const second = "GET /jwt/version HTTP/1.1\r\nhost: localhost\r\nconnection: close\r\n\r\n";
    // Node's parser stops at the end of a request it takes for an upgrade: a request pipelined
    // after it in the same read was dropped, unanswered, the connection left open (until the
    // idle timeout). The answer now closes the connection, so the client sends it again.
    for (const [name, request] of [
      ["websocket (GET)", "GET /jwt/version HTTP/1.1\r\nhost: localhost\r\nconnection: Upgrade\r\nupgrade: websocket\r\nsec-websocket-version: 13\r\nsec-websocket-key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n"],
      ["h2c (GET, HTTP2-Settings)", "GET /jwt/version HTTP/1.1\r\nhost: localhost\r\nconnection: keep-alive, Upgrade, HTTP2-Settings\r\nupgrade: h2c\r\nhttp2-settings: AAMAAABkAARAAAAAAAIAAAAA\r\n\r\n"],
      ["h2c (Connect POST with a body)", "POST /tessera.jwt.v1.JwtService/GetVersion HTTP/1.1\r\nhost: localhost\r\nconnection: upgrade\r\nupgrade: h2c\r\ncontent-type: application/json\r\ncontent-length: 2\r\n\r\n{}"],
    ] as const) {
      it(`${name}, a request pipelined after it: answered 200, Connection: close, and the connection closes`, async () => {
        const a = await exchange(server.port, request + second, 1000);
        assert.equal(a.status, 200, a.body);
        assert.equal(typeof (JSON.parse(a.body) as { version: unknown }).version, "string");
        assert.equal(a.headers.connection, "close");
        assert.equal(a.closed, true);
      });
    }

    it("an Upgrade header without the connection option is no upgrade: the connection is kept", async () => {
      const a = await exchange(server.port, "GET /jwt/version HTTP/1.1\r\nhost: localhost\r\nupgrade: websocket\r\n\r\n", 300);
      assert.equal(a.status, 200);
      assert.equal(a.headers.connection, "keep-alive");
      assert.equal(a.closed, false);
    });
  });
});
