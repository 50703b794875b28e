// Compiled with `npm run typecheck` (tsc --noEmit): the declarations fit
// the way the guides use the library.
import { Client, Worker, Fail, InvalidParams, Saga, StepContext } from 'zsaga';

async function submit(): Promise<Saga> {
  const c = new Client('tcp://127.0.0.1:5570', { key: 'api.key_secret', serverKey: 'zsagad.key' });
  try {
    await c.submit({ id: 'order-1', steps: [{ id: 'n', system: 'notify', action: 'send', compensation: 'retract',
      params: { customer: 'C1', channel: 'sms', text: 'paid', amount: 10n ** 17n } }] });
  } catch (e) {
    if (e instanceof InvalidParams) console.error(e.code, e.reason);
  }
  for await (const ev of c.watch({ fromSeq: 0 })) if (ev.state === 'completed') break;
  return c.wait('order-1', { timeoutMs: 60000 });
}

const w = new Worker('notify');
w.operation('send', { params: 'customer:str text:str', outputs: 'message_id:str' }, async (ctx: StepContext) => {
  await ctx.db.execute('INSERT INTO outbox (saga, step, body) VALUES (?, ?, ?)', ctx.saga, ctx.step, ctx.str('text'));
  if (ctx.db.rowCount === 0) throw new Fail('not_queued', 'nothing was queued');
  return { message_id: `${ctx.saga}/${ctx.step}` };
});
void submit;
void w.main([]);
