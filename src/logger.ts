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

/** Writes to stdout, one write per event-loop turn (or per 4 KiB of lines). */
function batchedStdout(): (line: string) => void {
  let pending = "";
  let pendingBytes = 0;
  let scheduled = false;
  let closed = false;
  const flush = () => {
    scheduled = false;
    const text = pending;
    pending = "";
    pendingBytes = 0;
    if (text && !closed) process.stdout.write(text);
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
