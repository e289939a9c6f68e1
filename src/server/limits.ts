// The server's fixed limits that configuration values are held to.
import { readFileSync } from "node:fs";

/**
 * Largest request header block, in bytes: an HTTP/1.1 request's header section (Node's
 * maxHeaderSize, the request line included) and an HTTP/2 request's header list
 * (SETTINGS_MAX_HEADER_LIST_SIZE) alike; beyond, 431 (HTTP/2: the stream reset).
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
