'use strict';
// Operation schemas (docs/protocol.md, "Operation schemas"): parse the
// text a worker declares and check a step's params against it, with the
// rules and messages of zsagad (messages/msg_schema.c), so a client finds
// a bad saga before sending it.

const NAME_RE = /^[a-z0-9_]{1,32}$/;
const REF_RE = /^\$\{([A-Za-z0-9._:-]{1,64})\.([a-z0-9_]{1,32})\}$/;
const MAX_PARAMS = 32;
const MAX_STRING = 1024;

/** The keys of a schema text: Map name -> {name, type, optional, min, max}. Throws naming the entry. */
function parse(text) {
  if (Buffer.byteLength(text) > 512) throw new Error('schema longer than 512 bytes');
  const keys = new Map();
  for (const tok of text.split(' ').filter(Boolean)) {
    const i = tok.indexOf(':');
    const name = i < 0 ? '' : tok.slice(0, i);
    if (i < 0 || !NAME_RE.test(name)) throw new Error(`schema entry '${tok}': want key:type`);
    const t = tok.slice(i + 1);
    const type = ['int', 'str', 'bool'].find((x) => t.startsWith(x));
    if (!type) throw new Error(`schema entry '${tok}': type must be int, str or bool`);
    let rest = t.slice(type.length);
    const k = { name, type, optional: false, min: null, max: null };
    if (type === 'int' && rest && rest !== '?') {
      const m = /^(>=|>)(-?\d+)|^(-?\d+)\.\.(-?\d+)/.exec(rest);
      if (!m) throw new Error(`schema entry '${tok}': bound must be >N, >=N or MIN..MAX`);
      if (m[1]) k.min = BigInt(m[2]) + (m[1] === '>' ? 1n : 0n);
      else [k.min, k.max] = [BigInt(m[3]), BigInt(m[4])];
      rest = rest.slice(m[0].length);
    }
    if (rest === '?') [k.optional, rest] = [true, ''];
    if (rest) throw new Error(`schema entry '${tok}': unexpected '${rest}'`);
    if (keys.has(name)) throw new Error(`schema names '${name}' twice`);
    keys.set(name, k);
  }
  if (keys.size > MAX_PARAMS) throw new Error(`schema with more than ${MAX_PARAMS} keys`);
  return keys;
}

function typeOf(v) {
  if (v === null || v === undefined) return 'nil';
  if (typeof v === 'boolean') return 'bool';
  if (typeof v === 'bigint' || (typeof v === 'number' && Number.isInteger(v))) return 'int';
  if (typeof v === 'string') return 'str';
  return typeof v === 'number' ? 'float' : typeof v;
}

/** The protocol's rules for a flat params or output map; throws naming the key. */
function checkValueForm(where, map) {
  if (!map || typeof map !== 'object' || Array.isArray(map)) throw new Error(`${where} must be a map`);
  const entries = Object.entries(map);
  if (entries.length > MAX_PARAMS) throw new Error(`${where} has more than ${MAX_PARAMS} entries`);
  for (const [k, v] of entries) {
    if (!NAME_RE.test(k)) throw new Error(`${where}: key '${k}' must be 1-32 of a-z 0-9 _`);
    const t = typeOf(v);
    if (t === 'float') throw new Error(`${where}.${k}: floating point is refused (money is integer minor units)`);
    if (t === 'str') {
      if (Buffer.byteLength(v) > MAX_STRING) throw new Error(`${where}.${k}: string over ${MAX_STRING} bytes`);
      if (v.includes('\0')) throw new Error(`${where}.${k}: string holds a NUL byte`);
    } else if (t === 'int') {
      const b = BigInt(v);
      if (b < -(2n ** 63n) || b >= 2n ** 64n) throw new Error(`${where}.${k}: integer out of int64`);
    } else if (t !== 'nil' && t !== 'bool') {
      throw new Error(`${where}.${k}: values are nil, booleans, integers or strings`);
    }
  }
}

function checkValue(k, v) {
  if (typeof v === 'string' && REF_RE.test(v)) return null; // known only at run time
  if ((v === null || v === undefined) && k.optional) return null;
  const got = typeOf(v);
  if (got !== k.type) return `params.${k.name} must be ${k.type}, not ${got}`;
  if (got === 'int') {
    const b = BigInt(v);
    if ((k.min !== null && b < k.min) || (k.max !== null && b > k.max)) {
      if (k.max !== null) return `params.${k.name} is ${v}: it must be from ${k.min} to ${k.max}`;
      return `params.${k.name} is ${v}: it must be at least ${k.min}`;
    }
  }
  return null;
}

/** null, or what is wrong with params for this action and compensation. */
function check(act, actName, comp, compName, params) {
  if (!act) return null; // nothing declared: the worker checks at run time
  for (const [key, v] of Object.entries(params)) {
    const a = act.get(key);
    const c = comp ? comp.get(key) : undefined;
    if (!a && !c) {
      const listed = [...act.values()].map((k) => k.name + (k.optional ? '?' : '')).join(', ') || 'nothing';
      return `unknown key params.${key} (${actName} takes: ${listed}${comp ? `; and its compensation ${compName}` : ''})`;
    }
    for (const k of [a, c]) {
      const err = k ? checkValue(k, v) : null;
      if (err) return err;
    }
  }
  for (const [which, schema, name] of [['operation', act, actName], ['its compensation', comp, compName]])
    for (const k of (schema || new Map()).values())
      if (!k.optional && !(k.name in params)) return `missing params.${k.name} (${which} ${name} needs it)`;
  return null;
}

/** Check every step of a saga against schemas ("system.op" -> {params}); null or the first problem. */
function checkSaga(saga, schemas) {
  const parsed = new Map();
  const get = (system, op) => {
    if (!op) return null;
    const name = `${system}.${op}`;
    if (!parsed.has(name)) {
      const text = (schemas[name] || {}).params;
      parsed.set(name, text === undefined || text === null ? null : parse(text));
    }
    return parsed.get(name);
  };
  const steps = saga.steps || [];
  for (let i = 0; i < steps.length; i++) {
    const st = steps[i];
    if (!st || typeof st !== 'object') continue;
    const params = st.params || {};
    try {
      checkValueForm(`steps[${i}].params`, params);
    } catch (e) {
      return e.message;
    }
    const err = check(get(st.system, st.action), st.action || '', get(st.system, st.compensation), st.compensation || '', params);
    if (err) return `steps[${i}] '${st.id || ''}': ${err}`;
  }
  return null;
}

module.exports = { parse, check, checkSaga, checkValueForm, NAME_RE, MAX_PARAMS };
