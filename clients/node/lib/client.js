'use strict';
// The client: submit sagas and follow them (docs/protocol.md, "Client
// requests and replies"). Every method returns a promise; a refusal
// rejects with Rejected (submit) or RequestError, carrying the code.
//
//   const { Client } = require('zsaga');
//   const c = new Client('tcp://127.0.0.1:5570', { key: 'api.key_secret', serverKey: 'zsagad.key' });
//   await c.submit({ id: 'order-42', steps: [...] });
//   const saga = await c.wait('order-42', { timeoutMs: 60000 });
const crypto = require('crypto');
const zmq = require('zeromq');
const { pack, unpack } = require('./wire');
const schema = require('./schema');
const { curveClient } = require('./keys');
const { Rejected, RequestError, InvalidParams, NoAnswer, Timeout } = require('./errors');

const ENDED = ['completed', 'compensated', 'parked', 'resolved'];
const MAX_HOPS = 8;
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

class Client {
  /**
   * endpoint: zsagad's clients socket, or several comma-separated (an
   * active zsagad and its standbys). options: key and serverKey (this
   * client's NAME.key_secret and zsagad's public key), or insecure: true
   * for a zsagad run --insecure; events (the events socket), timeoutMs,
   * checkParams (default true: check params against the workers' schemas).
   */
  constructor(endpoint = 'tcp://127.0.0.1:5570', options = {}) {
    if (!options.insecure && (!options.key || !options.serverKey))
      throw new Error('no key given: key and serverKey (or insecure: true for a plaintext test setup)');
    this.endpoint = endpoint;
    this.events_ = options.events || 'tcp://127.0.0.1:5572';
    this.key = options.key;
    this.serverKey = options.serverKey;
    this.insecure = !!options.insecure;
    this.timeoutMs = options.timeoutMs || 5000;
    this.checkParams = options.checkParams !== false;
    this.req = Date.now() * 1000;
    this.schemas_ = null;
  }

  /** A socket of this class (zmq.Dealer, zmq.Subscriber) connected with this client's keys. */
  socket(Kind, endpoint) {
    // A subscriber sends nothing, and zeromq refuses options a kind lacks.
    const opts = { linger: 0, receiveTimeout: this.timeoutMs };
    if (Kind !== zmq.Subscriber) opts.sendTimeout = this.timeoutMs;
    const s = new Kind(opts);
    curveClient(s, this.key, this.serverKey, this.insecure);
    const eps = endpoint.split(',').map((e) => e.trim()).filter(Boolean);
    if (eps.length > 1) s.immediate = true; // only connections that are up take a request
    for (const e of eps) s.connect(e);
    return s;
  }

  async requestAt(endpoint, body, req) {
    const s = this.socket(zmq.Dealer, endpoint);
    try {
      try {
        await s.send(body);
      } catch (e) {
        throw new NoAnswer('no_answer', `no zsagad took the request at ${endpoint}`);
      }
      const deadline = Date.now() + this.timeoutMs;
      for (;;) {
        let frames;
        try {
          s.receiveTimeout = Math.max(1, deadline - Date.now());
          frames = await s.receive();
        } catch (e) {
          throw new NoAnswer('no_answer', `no answer from zsagad at ${endpoint} within ${this.timeoutMs} ms: is it running there? ` +
            'A key zsagad does not know, or the wrong server key, is also refused at the handshake without a word');
        }
        const reply = unpack(frames[0]);
        if (reply.req === req) return reply;
      }
    } finally {
      s.close();
    }
  }

  /** One request; the reply (a refusal included). Follows not_leader. */
  async request(type, fields = {}) {
    const req = ++this.req;
    const msg = { v: 1, type, req };
    for (const [k, v] of Object.entries(fields)) if (v !== undefined && v !== null) msg[k] = v;
    const body = pack(msg);
    let ep = this.endpoint;
    let reply = {};
    for (let hop = 0; hop < MAX_HOPS; hop++) {
      reply = await this.requestAt(ep, body, req);
      if (reply.code !== 'not_leader') return reply;
      ep = reply.reason || this.endpoint;
      if (!reply.reason) await sleep(250 * (1 << Math.min(hop, 3))); // a standby is taking over
    }
    return reply;
  }

  ok(reply) {
    if (reply.type === 'rejected') throw new Rejected(reply.code, reply.reason, reply);
    if (reply.type === 'error') throw new RequestError(reply.code, reply.reason, reply);
    return reply;
  }

  async systems() {
    return this.ok(await this.request('systems')).systems;
  }

  /** "system.operation" -> {params, outputs}, as the workers declared. */
  async schemas(refresh = false) {
    if (!this.schemas_ || refresh) {
      const out = {};
      for (const s of await this.systems())
        for (const op of s.operations || []) out[`${s.name}.${op.name}`] = { params: op.params, outputs: op.outputs };
      this.schemas_ = out;
    }
    return this.schemas_;
  }

  /** Submit a saga (an object or JSON text): the `accepted` reply. A saga without an id gets one. */
  async submit(saga) {
    if (typeof saga === 'string') saga = JSON.parse(saga);
    if (!saga || typeof saga !== 'object' || Array.isArray(saga)) throw new TypeError('a saga must be an object');
    saga = { ...saga };
    if (!saga.id) saga.id = `saga-${crypto.randomUUID()}`;
    if (this.checkParams) {
      const err = schema.checkSaga(saga, await this.schemas());
      if (err) throw new InvalidParams('invalid_params', err);
    }
    return this.ok(await this.request('submit', { saga }));
  }

  async status(id) {
    return this.ok(await this.request('status', { id })).saga;
  }

  /** One page: {sagas, next}. */
  async list({ state, limit = 100, cursor, sinceMs, untilMs } = {}) {
    const r = this.ok(await this.request('list', { state, limit, cursor, since_ms: sinceMs, until_ms: untilMs }));
    return { sagas: r.sagas, next: r.next };
  }

  /** Poll until the saga ends: its final state. Rejects with Timeout. */
  async wait(id, { timeoutMs = 60000, pollMs = 50 } = {}) {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const st = await this.status(id);
      if (ENDED.includes(st.state)) return st;
      if (Date.now() >= deadline) throw new Timeout('timeout', `saga ${id} is ${st.state} after ${timeoutMs} ms`);
      await sleep(pollMs);
    }
  }

  async run(saga, options) {
    return this.wait((await this.submit(saga)).id, options);
  }

  async cancel(id, reason) {
    this.ok(await this.request('cancel', { id, reason }));
  }

  async retry(id) {
    this.ok(await this.request('retry', { id }));
  }

  /** Close a parked saga fixed by hand; reason records what was done. */
  async resolve(id, reason) {
    if (!reason) throw new Error('resolve needs a reason: what was done by hand, for the record');
    this.ok(await this.request('resolve', { id, reason }));
  }

  async stats() {
    return this.ok(await this.request('stats')).stats;
  }

  /** Journaled events after a sequence number: {events, next, first, head}. */
  async events(afterSeq = 0, limit = 1000) {
    return this.ok(await this.request('events', { seq: afterSeq, limit }));
  }

  /**
   * Follow the event stream (an async iterator). With fromSeq, everything
   * after it is read from the journal first, and any gap in the live
   * stream is filled the same way: each journaled event once, in order.
   */
  async *watch({ fromSeq, topic = '', idleMs = 1000 } = {}) {
    const sub = this.socket(zmq.Subscriber, this.events_);
    sub.receiveTimeout = idleMs;
    sub.subscribe(topic);
    const resumable = fromSeq !== undefined && fromSeq !== null;
    const box = { last: resumable ? fromSeq : 0 };
    try {
      if (resumable) {
        await sleep(200); // the subscription reaches zsagad before we read
        yield* this.catchUp(box);
      }
      for (;;) {
        let frames;
        try {
          frames = await sub.receive();
        } catch (e) {
          if (e.code !== 'EAGAIN') throw e;
          if (resumable) yield* this.catchUp(box);
          continue;
        }
        if (frames.length !== 2) continue;
        const ev = unpack(frames[1]);
        const seq = ev.seq || 0;
        if (!resumable || seq === 0) yield ev; // seq 0: an alert, not journaled
        else if (seq > box.last) {
          if (seq > box.last + 1) yield* this.catchUp(box);
          if (seq > box.last) {
            yield ev;
            box.last = seq;
          }
        }
      }
    } finally {
      sub.close();
    }
  }

  // The journal's events after box.last, page by page. No answer (zsagad
  // restarting) is not the end: asked again when the stream goes quiet.
  async *catchUp(box) {
    for (;;) {
      let r;
      try {
        r = await this.events(box.last);
      } catch (e) {
        if (e instanceof NoAnswer) return;
        throw e;
      }
      for (const ev of r.events) yield ev;
      if (r.next > box.last) box.last = r.next;
      if (!r.events.length || box.last >= r.head) return;
    }
  }
}

module.exports = { Client, ENDED };
