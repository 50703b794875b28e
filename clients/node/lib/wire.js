'use strict';
// msgpack as the protocol wants it (docs/protocol.md, "Value forms"):
// integers are int64, never floating point. A JavaScript number is exact
// only up to 2^53, so integers beyond 32 bits travel as BigInt (int64 or
// uint64 on the wire, as the C side packs them) and come back as numbers
// when they are safe, as BigInt when they are not.
const { Encoder, Decoder } = require('@msgpack/msgpack');

const encoder = new Encoder({ useBigInt64: true });
const decoder = new Decoder({ useBigInt64: true });

function toWire(v) {
  if (typeof v === 'number') {
    if (!Number.isInteger(v)) throw new TypeError(`${v}: floating point is refused (money is integer minor units)`);
    return v >= -(2 ** 31) && v < 2 ** 32 ? v : BigInt(v);
  }
  if (typeof v === 'bigint') return v >= -(2n ** 31n) && v < 2n ** 32n ? Number(v) : v;
  if (Array.isArray(v)) return v.map(toWire);
  if (v && typeof v === 'object' && !(v instanceof Uint8Array)) {
    const o = {};
    for (const [k, x] of Object.entries(v)) if (x !== undefined) o[k] = toWire(x);
    return o;
  }
  return v;
}

function fromWire(v) {
  if (typeof v === 'bigint') return v >= BigInt(Number.MIN_SAFE_INTEGER) && v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v;
  if (Array.isArray(v)) return v.map(fromWire);
  if (v && typeof v === 'object' && !(v instanceof Uint8Array)) {
    const o = {};
    for (const [k, x] of Object.entries(v)) o[k] = fromWire(x);
    return o;
  }
  return v;
}

function pack(v) {
  const b = encoder.encode(toWire(v));
  return Buffer.from(b.buffer, b.byteOffset, b.byteLength);
}

function unpack(buf) {
  return fromWire(decoder.decode(buf));
}

module.exports = { pack, unpack, toWire, fromWire };
