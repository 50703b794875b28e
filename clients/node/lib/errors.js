'use strict';
// Errors of the zsaga library. Every refusal from zsagad carries the
// protocol's code (docs/protocol.md, "Error codes") and its reason.

class ZsagaError extends Error {
  constructor(code, reason, reply) {
    super(`${code}: ${reason}`);
    this.name = this.constructor.name;
    this.code = code;
    this.reason = reason;
    this.reply = reply || {};
  }
}
/** zsagad refused a submit (`rejected`). */
class Rejected extends ZsagaError {}
/** zsagad answered a request with `error`. */
class RequestError extends ZsagaError {}
/** A step's params do not fit the operation's schema; found before sending. */
class InvalidParams extends ZsagaError {}
/** zsagad did not answer in time (down, or the key refused at the handshake). */
class NoAnswer extends ZsagaError {}
/** wait() gave up before the saga ended. */
class Timeout extends ZsagaError {}

/** Thrown by an operation: failed for good; its writes roll back, the verdict is kept. */
class Fail extends Error {
  constructor(code, message = '') {
    super(`${code}: ${message}`);
    this.name = 'Fail';
    this.code = code;
    this.detail = message;
  }
}
/** Thrown by an operation: a transient condition; zsagad tries again later. */
class RetryLater extends Error {
  constructor(message = '') {
    super(message);
    this.name = 'RetryLater';
    this.detail = message;
  }
}

module.exports = { ZsagaError, Rejected, RequestError, InvalidParams, NoAnswer, Timeout, Fail, RetryLater };
