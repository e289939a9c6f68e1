// A call's CallEnd (src/call-scope.ts) is the AbortSignal it stands for, whenever that signal
// is made: before the abort or after it, with the same reason, its listeners told once.
import { strict as assert } from "node:assert";
import { CallEnd, callEndKey, signalAborted } from "../../src/call-scope.js";

describe("CallEnd: a call's signal made when asked for", () => {
  const carrier = (end: CallEnd) => ({
    get signal() {
      return end.signal;
    },
    [callEndKey]: end,
  });

  it("aborted before its signal is made: the signal is made aborted, with the reason", () => {
    const end = new CallEnd();
    const reason = new Error("gone");
    assert.equal(signalAborted(carrier(end)), false);
    end.abort(reason);
    end.abort(new Error("again"));
    assert.equal(signalAborted(carrier(end)), true);
    assert.equal(end.reason, reason);
    assert.equal(end.signal.aborted, true);
    assert.equal(end.signal.reason, reason);
    assert.equal(end.signal, end.signal);
  });

  it("aborted after its signal is made: the signal aborts, its listeners told once", () => {
    const end = new CallEnd();
    const signal = carrier(end).signal;
    let told = 0;
    signal.addEventListener("abort", () => told++);
    assert.equal(signal.aborted, false);
    const reason = new Error("gone");
    end.abort(reason);
    end.abort(new Error("again"));
    assert.equal(told, 1);
    assert.equal(signal.reason, reason);
    assert.equal(signalAborted(carrier(end)), true);
  });

  it("signalAborted reads a plain AbortSignal's carrier as it is", () => {
    const controller = new AbortController();
    assert.equal(signalAborted({ signal: controller.signal }), false);
    controller.abort();
    assert.equal(signalAborted({ signal: controller.signal }), true);
  });
});
