import net from "node:net";
import { startTestServer } from "/work/main/test/support/server.js";
const srv = await startTestServer();
function frame(type: number, flags: number, stream: number, payload: Buffer): Buffer { const h = Buffer.alloc(9); h.writeUIntBE(payload.length, 0, 3); h.writeUInt8(type, 3); h.writeUInt8(flags, 4); h.writeUInt32BE(stream, 5); return Buffer.concat([h, payload]); }
function hpack(headers: Array<[string, string]>): Buffer { const parts: Buffer[] = []; const str = (s: string) => { const b = Buffer.from(s); return Buffer.concat([Buffer.from([b.length]), b]); }; for (const [k, v] of headers) parts.push(Buffer.from([0x00]), str(k), str(v)); return Buffer.concat(parts); }
const s = net.connect(srv.port, "127.0.0.1");
await new Promise((r) => s.once("connect", r));
let buf = Buffer.alloc(0);
s.on("data", (d: Buffer) => { buf = Buffer.concat([buf, d]); while (buf.length >= 9) { const len = buf.readUIntBE(0, 3); if (buf.length < 9 + len) break; const type = buf[3]; const flags = buf[4]; const stream = buf.readUInt32BE(5); const p = buf.subarray(9, 9 + len); buf = buf.subarray(9 + len); console.log("frame type", type, "flags", flags, "stream", stream, type === 3 || type === 7 ? p.toString("hex") : len); if (type === 4 && !(flags & 1)) s.write(frame(4, 1, 0, Buffer.alloc(0))); } });
s.on("close", () => console.log("socket closed"));
s.write(Buffer.from("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n")); s.write(frame(4, 0, 0, Buffer.alloc(0)));
await new Promise((r) => setTimeout(r, 100));
for (let i = 0; i < Number(process.argv[2] ?? 3); i++) s.write(frame(1, 4, 1 + 2 * i, hpack([[":method", "POST"], [":scheme", "http"], [":authority", "x"], [":path", "/tessera.v1.JwtService/GetVersion"], ["content-type", "application/grpc"], ["te", "trailers"]])));
await new Promise((r) => setTimeout(r, 500));
s.write(frame(6, 0, 0, Buffer.alloc(8)));
await new Promise((r) => setTimeout(r, 300));
s.destroy(); await srv.close();
