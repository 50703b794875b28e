#!/usr/bin/env node
'use strict';
// The "notify" example system in Node.js: the same operations, tables and
// Redis keys as ../c/notify.c and ../python/notify_worker.py, so workers
// in all three languages may serve one database together.
//
//   send     customer:str channel:str(sms|email|push) text:str
//            spends one of the customer's notification quota and queues
//            the message; fails for good with quota_exhausted or
//            unknown_customer. Output: message_id, remaining.
//   retract  its compensation: withdraws the message, gives the quota back.
//
// Run: notify-worker.js --db URI --orchestrator EP --key K --server-key S
// (the system is "notify" unless NOTIFY_SYSTEM names another).
const { Worker, Fail } = require('zsaga');

const tables = (bigint) =>
  `CREATE TABLE notify_quota (customer VARCHAR(64) PRIMARY KEY, remaining ${bigint} NOT NULL);` +
  'CREATE TABLE notify_outbox (saga VARCHAR(64) NOT NULL, step VARCHAR(64) NOT NULL,' +
  ' customer VARCHAR(64) NOT NULL, channel VARCHAR(16) NOT NULL, body TEXT NOT NULL,' +
  ` state VARCHAR(16) NOT NULL, created_ms ${bigint} NOT NULL, PRIMARY KEY (saga, step))`;
const drop = 'DROP TABLE notify_outbox; DROP TABLE notify_quota';

const worker = new Worker(process.env.NOTIFY_SYSTEM || 'notify', {
  migrations: [{
    version: 1, name: 'notify tables',
    up: { sqlite: tables('INTEGER'), postgresql: tables('BIGINT'), mysql: tables('BIGINT'), redis: 'return 0' },
    down: { sqlite: drop, postgresql: drop, mysql: drop, redis: 'return 0' },
  }],
});

// Redis: the quota is the hash notify:quota, each message notify:outbox:{saga}:step.
const LUA_SEND = `local function effect(A, prior)
  local left = redis.call('HGET', 'notify:quota', A[1])
  if not left then return 'unknown_customer', 'no quota is set for ' .. A[1] end
  if tonumber(left) <= 0 then
    return 'quota_exhausted', 'customer ' .. A[1] .. ' has no notifications left'
  end
  local n = redis.call('HINCRBY', 'notify:quota', A[1], -1)
  redis.call('HSET', 'notify:outbox:{' .. saga .. '}:' .. step, 'customer', A[1],
             'channel', A[2], 'body', A[3], 'state', 'queued', 'created_ms', ARGV[5])
  return nil, {message_id = saga .. '/' .. step, remaining = n}
end
`;

const LUA_RETRACT = `local function effect(A, prior)
  local k = 'notify:outbox:{' .. saga .. '}:' .. step
  local customer = redis.call('HGET', k, 'customer')
  if customer and redis.call('HGET', k, 'state') == 'queued' then
    redis.call('HSET', k, 'state', 'retracted')
    redis.call('HINCRBY', 'notify:quota', customer, 1)
  end
  return nil, {retracted = 1}
end
`;

worker.operation('send', {
  params: 'customer:str channel:str text:str', outputs: 'message_id:str remaining:int',
  rule: "Spends one of the customer's notification quota and queues the message.", errors: 'quota_exhausted unknown_customer',
}, async (ctx) => {
  const customer = ctx.str('customer'), channel = ctx.str('channel'), text = ctx.str('text');
  if (!['sms', 'email', 'push'].includes(channel)) throw new Fail('bad_params', 'params.channel: must be sms, email or push');
  if (ctx.dialect === 'redis') return ctx.lua(LUA_SEND, [customer, channel, text]);
  const { db } = ctx;
  await db.execute('UPDATE notify_quota SET remaining = remaining - 1 WHERE customer = ? AND remaining > 0', customer);
  if (db.rowCount === 0) {
    const [row] = await db.execute('SELECT remaining FROM notify_quota WHERE customer = ?', customer);
    if (!row) throw new Fail('unknown_customer', `no quota is set for ${customer}`);
    throw new Fail('quota_exhausted', `customer ${customer} has no notifications left`);
  }
  await db.execute("INSERT INTO notify_outbox (saga, step, customer, channel, body, state, created_ms) VALUES (?, ?, ?, ?, ?, 'queued', ?)",
    ctx.saga, ctx.step, customer, channel, text, ctx.nowMs);
  const [[left]] = await db.execute('SELECT remaining FROM notify_quota WHERE customer = ?', customer);
  return { message_id: `${ctx.saga}/${ctx.step}`, remaining: left };
});

worker.operation('retract', {
  params: '', outputs: 'retracted:int', rule: 'The compensation of send: withdraws the message and gives the quota back.',
}, async (ctx) => {
  if (ctx.dialect === 'redis') return ctx.lua(LUA_RETRACT);
  await ctx.db.execute('UPDATE notify_quota SET remaining = remaining + 1 WHERE customer = ' +
    "(SELECT customer FROM notify_outbox WHERE saga = ? AND step = ? AND state = 'queued')", ctx.saga, ctx.step);
  await ctx.db.execute("UPDATE notify_outbox SET state = 'retracted' WHERE saga = ? AND step = ? AND state = 'queued'", ctx.saga, ctx.step);
  return { retracted: 1 };
});

worker.main().then((code) => process.exit(code));
