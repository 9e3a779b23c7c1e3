// Recovery. Connect, subscribe to PARSEC_CHANNEL and wait for one publication. Then,
// with PARSEC_MODE=client: disconnect, print {"event": "offline"}, wait for a "go" line
// on stdin (the test publishes meanwhile), connect again and wait for PARSEC_MISSED
// recovered publications. With PARSEC_MODE=server: print {"event": "waiting"} and let
// the server force a reconnect; after resubscribing wait for one more publication.

import { CLIENT_EVENTS, SUB_EVENTS, emit, env, fail, finish, newClient, nextLine, record } from './lib.mjs';

const mode = env('PARSEC_MODE');
const client = newClient({ token: env('PARSEC_TOKEN') });
const events = record(client, 'client', CLIENT_EVENTS);
const sub = client.newSubscription(env('PARSEC_CHANNEL'));
const subEvents = record(sub, 'sub', SUB_EVENTS);

client.connect();
await events.next('connected');
sub.subscribe();
await subEvents.next('subscribed');
await subEvents.next('publication');

if (mode === 'client') {
  client.disconnect();
  await events.next('disconnected');
  emit('offline');
  if ((await nextLine()) !== 'go') fail('expected "go" on stdin');
  client.connect();
  await subEvents.next('subscribed');
  for (let i = 0; i < Number(env('PARSEC_MISSED')); i++) {
    await subEvents.next('publication');
  }
} else if (mode === 'server') {
  emit('waiting');
  await events.until('connecting', (ctx) => ctx.code >= 3000);
  await subEvents.next('subscribed');
  emit('resubscribed');
  await subEvents.next('publication');
} else {
  fail(`unknown PARSEC_MODE ${mode}`);
}
finish(client);
