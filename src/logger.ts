// Structured JSON logs: one object per line on stdout. Callers pass fields, never secrets;
// `redact` is a last line of defence for values that look like credentials. A line written
// while a request is served carries that request's id and its W3C trace and span ids
// (`trace_id`, `span_id`; src/call-scope.ts), whoever writes it.
//
// Lines written in one event-loop turn leave in one write (a request log per call would
// otherwise be one syscall per call); whatever is pending is flushed synchronously on exit.
import { writeSync } from "node:fs";
import { currentCall } from "./call-scope.js";

export type LogLevel = "debug" | "info" | "warn" | "error" | "silent";
const rank: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40, silent: 100 };

export interface Logger {
  debug(msg: string, fields?: Record<string, unknown>): void;
  info(msg: string, fields?: Record<string, unknown>): void;
  warn(msg: string, fields?: Record<string, unknown>): void;
  error(msg: string, fields?: Record<string, unknown>): void;
}

const secretKeys = /pass(word)?|secret|token|authorization|cookie|hash|private/i;

/**
 * Drops fields whose name suggests a secret, but for numbers (no secret is one: such a field is a
 * count, as housekeeping's `refreshTokens`); errors become {name, message} (no stack, no cause).
 */
export function redact(fields: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const k in fields) {
    const v = fields[k];
    const secretLike = secretKeys.test(k) && k !== "tokenLink" && typeof v !== "number";
    out[k] = secretLike ? "[redacted]" : v instanceof Error ? { name: v.name, message: v.message } : v;
  }
  return out;
}

// Several worker processes may share one stdout pipe: a write of at most PIPE_BUF (4096) bytes
// is atomic, so a batch never grows past it and lines of two workers never interleave. It is
// counted in bytes (UTF-8), not characters: a line of non-ASCII text is up to 3 bytes a character.
const atomicWriteBytes = 4096;

/**
 * The most output left waiting in memory for standard output's reader (as the stream counts it,
 * a string's length: a byte a character of ASCII). A pipe's writes do not wait for its reader:
 * one that stops reading (a log shipper stalled) or reads slower than lines come kept every line
 * in memory, without bound (under a flood of calls some 0.7 KB a call: 230 MB more after
 * 300,000). Past it, a batch is dropped, its lines counted, and their count written once the
 * reader has caught up (droppedLine).
 */
const maxWaitingLogBytes = 16 * 1024 * 1024;

/** The base fields of the logger writing to stdout (the worker's number), for droppedLine. */
let stdoutBase: Record<string, unknown> | undefined;

/** The line saying how many lines were dropped (at error: written whatever the level). */
const droppedLine = (lines: number) =>
  JSON.stringify({ time: new Date().toISOString(), level: "error", msg: "log lines dropped: standard output was not read", ...stdoutBase, lines }) + "\n";

/** Lines in `text`: each ends with its one line feed (JSON escapes any other). */
function lineCount(text: string): number {
  let n = 0;
  for (let i = text.indexOf("\n"); i !== -1; i = text.indexOf("\n", i + 1)) n++;
  return n;
}

/** Writes to stdout, one write per event-loop turn (or per 4 KiB of lines). */
function batchedStdout(): (line: string) => void {
  let pending = "";
  let pendingBytes = 0;
  let scheduled = false;
  let closed = false;
  /** Lines dropped since the last droppedLine (maxWaitingLogBytes). */
  let dropped = 0;
  let awaitingDrain = false;
  const reportDropped = () => {
    if (dropped === 0 || closed) return;
    process.stdout.write(droppedLine(dropped));
    dropped = 0;
  };
  const flush = () => {
    scheduled = false;
    const text = pending;
    pending = "";
    pendingBytes = 0;
    if (!text || closed) return;
    if (process.stdout.writableLength > maxWaitingLogBytes) {
      // The last write was refused (past the stream's high-water mark): "drain" comes once
      // everything waiting has been taken.
      if (!awaitingDrain) {
        awaitingDrain = true;
        process.stdout.once("drain", () => {
          awaitingDrain = false;
          reportDropped();
        });
      }
      dropped += lineCount(text);
      return;
    }
    reportDropped();
    process.stdout.write(text);
  };
  // Standard output closed under the service (the log reader gone, a pipe's other end exited):
  // the stream's unhandled error ended the process with a stack trace. Logs can no longer be
  // written: the process stops, saying so on stderr in one line.
  process.stdout.on("error", (error: NodeJS.ErrnoException) => {
    if (closed) return;
    closed = true;
    process.stderr.write(`tessera: stopping: standard output is closed (${error.code ?? error.message}), where the logs go\n`);
    process.exit(1);
  });
  process.once("exit", () => {
    if (dropped > 0) pending = droppedLine(dropped) + pending;
    if (pending && !closed) {
      try {
        writeSync(1, pending);
      } catch {
        // standard output gone: nothing more can be written
      }
    }
    pending = "";
  });
  return (line) => {
    const bytes = Buffer.byteLength(line);
    if (pendingBytes + bytes > atomicWriteBytes) flush();
    pending += line;
    pendingBytes += bytes;
    if (!scheduled) {
      scheduled = true;
      setImmediate(flush);
    }
  };
}

let stdoutWriter: ((line: string) => void) | undefined;

/** `base`: fields on every line (e.g. the worker's number in a cluster). */
export function createLogger(level: LogLevel, write?: (line: string) => void, base?: Record<string, unknown>): Logger {
  const min = rank[level];
  if (write === undefined && base !== undefined) stdoutBase = base;
  const out = write ?? (stdoutWriter ??= batchedStdout());
  const emit = (lvl: Exclude<LogLevel, "silent">, msg: string, fields?: Record<string, unknown>) => {
    if (rank[lvl] < min) return;
    const scope = currentCall();
    const entry = {
      time: new Date().toISOString(),
      level: lvl,
      msg,
      ...base,
      ...(scope !== undefined && { requestId: scope.requestId }),
      ...(scope?.traceId !== undefined && { trace_id: scope.traceId, span_id: scope.spanId }),
      ...(fields ? redact(fields) : {}),
    };
    out(JSON.stringify(entry) + "\n");
  };
  return {
    debug: (m, f) => emit("debug", m, f),
    info: (m, f) => emit("info", m, f),
    warn: (m, f) => emit("warn", m, f),
    error: (m, f) => emit("error", m, f),
  };
}

export const silentLogger: Logger = createLogger("silent");
