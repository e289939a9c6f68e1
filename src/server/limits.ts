// The server's fixed limits that configuration values are held to.
import { readFileSync } from "node:fs";

/**
 * Largest request header block, in bytes: an HTTP/1.1 request's header section (Node's
 * maxHeaderSize, the request line included) and an HTTP/2 request's header list
 * alike; beyond, 431 (HTTP/2: 414 for a :path longer than that alone, and a gRPC, gRPC-Web or
 * Connect streaming call: RESOURCE_EXHAUSTED in its framing, where HTTP/1.1's parser error is
 * answered before the call's framing is known). HTTP/2 advertises twice this
 * (SETTINGS_MAX_HEADER_LIST_SIZE), read to be answered so: a list over that has its stream reset
 * (listener.ts).
 */
export const requestHeaderLimitBytes = 16 * 1024;

/**
 * What a credential sent in a header may take of that block: the rest is left to the request
 * line (or HTTP/2's pseudo-headers), Host and the call's other headers.
 */
export const headerCredentialLimitBytes = requestHeaderLimitBytes - 1024;

/** The most connections TESSERA_MAX_CONNECTIONS's default lets a worker serve on one port. */
export const defaultMaxConnectionsCeiling = 10_000;

/**
 * This process's open-file limit (RLIMIT_NOFILE, its soft limit, which Node raises to the hard
 * limit as it starts), as /proc/self/limits reads it; undefined where that cannot be read (not
 * Linux) or says "unlimited".
 */
export function processOpenFileLimit(): number | undefined {
  try {
    const m = /^Max open files\s+(\d+)\s/m.exec(readFileSync("/proc/self/limits", "latin1"));
    return m ? Number(m[1]) : undefined;
  } catch {
    return undefined;
  }
}

/**
 * TESSERA_MAX_CONNECTIONS's default: a quarter of the open-file limit (1024 assumed where it
 * cannot be read), at most defaultMaxConnectionsCeiling. Each connection holds a file
 * descriptor, and TESSERA_METRICS_PORT may hold as many again: the other half is left to the
 * store (MongoDB's pool, the embedded store's files), the TLS files read at a reload, backups,
 * logs and the workers' channels. Unbounded, idle connections opened by one client took every
 * descriptor: new connections were reset unanswered and uncounted, and the store could open
 * none. The ceiling bounds memory: a connection whose TLS handshake has begun holds some 40 KiB
 * until the headers timeout, an HTTP/2 session without streams some 20 KiB until the idle
 * timeout.
 */
export function defaultMaxConnections(openFiles: number | undefined): number {
  return Math.max(1, Math.min(defaultMaxConnectionsCeiling, Math.floor((openFiles ?? 1024) / 4)));
}

/**
 * An HTTP/1.1 request answered before its body was read (a 413 for a Content-Length over the
 * body limit, a refusal before the body is looked at): at most this much of that body still due
 * is read and dropped after the answer, so that the connection serves the next request, as Go's
 * net/http does (its maxPostHandlerReadBytes, 256 KiB: a few milliseconds of reading). Beyond
 * that, or of unknown length (chunked, not all arrived), the answer carries Connection: close
 * and the connection closes after it (unreadBodyLinger): unbounded, the server read the whole
 * of what the request announced (a gigabyte) for nothing, within the request timeout only.
 */
export const unreadBodyDrainBytes = 256 * 1024;

/**
 * Closing such a connection (a lingering close, as nginx's lingering_close): its side is shut
 * after the answer, then what the client still sends is read and dropped, never parsed, until
 * the client closes its side, at most `bytes` of it, for at most `ms` (after `bytes`, it is no
 * longer read: the kernel's buffers take what follows), then the socket is destroyed. Closed at
 * once with bytes unread, the connection would be reset, and a reset may reach the client before
 * the answer it was sent after, which it then never reads (RFC 9112 9.6). Half a second is Go's
 * delay for the same reset; a second leaves the answer time to cross a slow path.
 */
export const unreadBodyLinger = { bytes: 256 * 1024, ms: 1000 } as const;
