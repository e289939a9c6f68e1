// Preloaded (node --import) into a cluster's workers: NEWS_FAILURES lists workers whose handler of
// the news that an API token was revoked fails, as "worker:how" pairs separated by commas ("throw":
// it throws; "reject": it returns a rejected promise), as a bug in a handler or a cache that
// cannot be reached would. Worker 1 is the first (it has no TESSERA_WORKER_ID). The handler is
// ApiTokens.forget (tessera.ts), which fails here with a message quoting the token's hash, the
// news's payload: it must not reach the log. A failing worker's own revocations fail too (they
// forget the token as well): the tests revoke through the others.
//
// NEWS_EXTRA_ACKS lists workers (by number, comma-separated) each of whose news acknowledgements
// is followed by the same acknowledgement again, one for an id never sent, and 100 ms later one
// for the same id without `failed`: a duplicate, an unknown id and a late acknowledgement, which
// the sender must ignore. Each time, once the last is sent, it writes a line saying so to stderr.
//
// NEWS_NEIGHBOUR_ACKS lists workers (by number, comma-separated) each of whose news
// acknowledgements is followed by the same acknowledgement for the ids next to its own (id - 1 and
// id + 1), as a confused follower would send: news ids are numbered in turn by the worker sending
// it, so the first worker's news to the other followers has those ids, and an acknowledgement from
// a worker the news was not sent to must not count. Each time it writes a line saying so to stderr.
import { ChildProcess } from "node:child_process";

const self = process.env.TESSERA_WORKER_ID ?? "1";
const how = new Map((process.env.NEWS_FAILURES ?? "").split(",").filter(Boolean).map((pair) => pair.split(":") as [string, string])).get(self);
const extraAcks = (process.env.NEWS_EXTRA_ACKS ?? "").split(",").includes(self);
const neighbourAcks = (process.env.NEWS_NEIGHBOUR_ACKS ?? "").split(",").includes(self);

if (how !== undefined) {
  const { ApiTokens } = await import("../../src/core/api-tokens.js");
  ApiTokens.prototype.forget = function forgetFailing(hash: string) {
    const error = new Error(`cannot forget the token "${hash}" (${hash}): NEWS_FAILURES`);
    if (how === "reject") return Promise.reject(error) as unknown as void;
    throw error;
  };
}

type Sender = { send: (message: unknown, ...rest: unknown[]) => boolean };
type Ack = { type: "tessera:news-ack"; id: string; failed?: unknown };

/** Each news acknowledgement `target` sends is followed by what `more` sends over the same channel (`again`). */
function afterAcks(target: Sender, more: (ack: Ack, again: (m: unknown) => void) => void): void {
  const send = target.send;
  target.send = function (this: unknown, message: unknown, ...rest: unknown[]) {
    const sent = send.call(this, message, ...rest);
    const ack = message as { type?: unknown; id?: unknown } | null;
    if (ack?.type === "tessera:news-ack" && typeof ack.id === "string") more(ack as Ack, (m) => send.call(this, m, () => {}));
    return sent;
  };
}

/** A duplicate, one for an unknown id, and a late one. */
function echoAcks(ack: Ack, again: (m: unknown) => void): void {
  again(ack);
  again({ type: "tessera:news-ack", id: `unknown-${ack.id}`, failed: true });
  again({ type: "tessera:news-ack", id: "999999" });
  setTimeout(() => {
    again({ type: "tessera:news-ack", id: ack.id });
    process.stderr.write(`failing-news: worker ${self} acknowledged news ${ack.failed === true ? "as failed " : ""}with extra acknowledgements\n`);
  }, 100);
}

/** The same acknowledgement for the ids next to its own. */
function neighboursAcks(ack: Ack, again: (m: unknown) => void): void {
  for (const id of [Number(ack.id) - 1, Number(ack.id) + 1]) again({ ...ack, id: String(id) });
  process.stderr.write(`failing-news: worker ${self} acknowledged news with the ids next to its own too\n`);
}

/**
 * Wraps this worker's news acknowledgements with `more` (afterAcks). A follower acknowledges over
 * its own process's channel; the first worker over each follower's, whose send() is the child's
 * own (set with its channel), wrapped at its first event ("spawn").
 */
function wrapAcks(more: (ack: Ack, again: (m: unknown) => void) => void): void {
  if (self !== "1") return afterAcks(process as unknown as Sender, more);
  const wrapped = new WeakSet<object>();
  const proto = ChildProcess.prototype as unknown as { emit: (event: string | symbol, ...args: unknown[]) => boolean };
  const emit = proto.emit;
  proto.emit = function (this: Sender, event: string | symbol, ...args: unknown[]) {
    if (!wrapped.has(this) && typeof this.send === "function") {
      wrapped.add(this);
      afterAcks(this, more);
    }
    return emit.call(this, event, ...args);
  };
}

if (extraAcks) wrapAcks(echoAcks);
if (neighbourAcks) wrapAcks(neighboursAcks);
