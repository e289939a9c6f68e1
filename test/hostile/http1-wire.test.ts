// HTTP/1.1 requests that no ordinary client sends, written byte for byte on a raw socket: the
// request-line forms of RFC 9112 3.2 (origin, absolute, authority, asterisk), request lines of
// other HTTP versions, methods and headers Node's server hands to listeners of their own
// (CONNECT, Upgrade). Each gets a documented answer, and the server stays up.
import { strict as assert } from "node:assert";
import net from "node:net";
import { errorInfoJson } from "../support/error-details.js";
import { startTestServer, type TestServer } from "../support/server.js";
import { healthy } from "./support.js";

export interface WireAnswer {
  status: number;
  /** Header names lower-cased; the last value of a repeated header. */
  headers: Record<string, string>;
  body: string;
  /** The server closed the connection after answering. */
  closed: boolean;
}

/**
 * Writes `text` (latin1) on a new connection and reads the first answer (Content-Length framed,
 * or up to the close), then waits up to `closeWithinMs` to see whether the server closes.
 */
export function exchange(port: number, text: string, closeWithinMs = 300): Promise<WireAnswer> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, "127.0.0.1", () => socket.write(Buffer.from(text, "latin1")));
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
      const end = data.indexOf("\r\n\r\n");
      if (end < 0) return;
      const [line, ...lines] = data.slice(0, end).split("\r\n");
      const headers: Record<string, string> = {};
      for (const l of lines) {
        const i = l.indexOf(":");
        headers[l.slice(0, i).toLowerCase()] = l.slice(i + 1).trim();
      }
      const length = headers["content-length"];
      const rest = data.slice(end + 4);
      if (length === undefined ? !atClose : rest.length < Number(length)) return;
      answer = { status: Number(/^HTTP\/1\.1 (\d{3}) /.exec(line!)?.[1]), headers, body: length === undefined ? rest : rest.slice(0, Number(length)) };
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

describe("hostile: HTTP/1.1 request shapes (raw sockets)", function () {
  this.timeout(30_000);
  let server: TestServer;
  before(async () => {
    server = await startTestServer();
  });
  after(async () => {
    await server?.close();
  });
  afterEach(async () => {
    await healthy(server.url);
    const errors = server.logs.filter((l) => (JSON.parse(l) as { level: string }).level === "error");
    assert.deepEqual(errors, []);
  });

  describe("a request line of another HTTP version", () => {
    // llhttp parses "HTTP/2.0" in HTTP/1 syntax, and the request then passed for one of the
    // HTTP/2 server: the listener read its (absent) HTTP/2 stream and the process ended.
    for (const version of ["2.0", "0.9"]) {
      it(`HTTP/${version}: 505 naming the version, the connection closed`, async () => {
        const line = version === "0.9" ? "GET /jwt/version\r\n\r\n" : `GET /jwt/version HTTP/${version}\r\nhost: localhost\r\n\r\n`;
        const a = await exchange(server.port, line);
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

    it("HTTP/1.0 and HTTP/1.1 are served", async () => {
      for (const version of ["1.0", "1.1"]) {
        const a = await exchange(server.port, `GET /jwt/version HTTP/${version}\r\nhost: localhost\r\nconnection: close\r\n\r\n`);
        assert.equal(a.status, 200, version);
        assert.equal(typeof (JSON.parse(a.body) as { version: unknown }).version, "string");
      }
    });
  });
});
