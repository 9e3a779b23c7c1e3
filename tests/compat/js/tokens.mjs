// Token refresh through getToken. PARSEC_TOKEN is the first connection token and
// PARSEC_FRESH_TOKEN what getToken returns (each call prints {"event": "get_token"}).
// PARSEC_SCENARIO:
//   connect  - wait until connected (PARSEC_TOKEN may be expired: 109, then getToken).
//   refresh  - connect, subscribe to PARSEC_CHANNEL, wait for getToken, hold
//              PARSEC_HOLD_MS, then print the client and subscription states and
//              presence stats.
//   sub      - connect, subscribe to PARSEC_CHANNEL with PARSEC_SUB_TOKEN and a
//              getToken returning PARSEC_FRESH_SUB_TOKEN (prints "get_sub_token").

import { CLIENT_EVENTS, SUB_EVENTS, emit, env, fail, finish, newClient, record } from './lib.mjs';

const scenario = env('PARSEC_SCENARIO');
let tokenWaiter = null;
const refreshed = new Promise((resolve) => { tokenWaiter = resolve; });
const client = newClient({
  token: env('PARSEC_TOKEN'),
  getToken: async () => {
    emit('get_token');
    tokenWaiter();
    return env('PARSEC_FRESH_TOKEN');
  },
});
const events = record(client, 'client', CLIENT_EVENTS);
client.connect();
await events.next('connected');

if (scenario === 'connect') {
  finish(client);
} else if (scenario === 'refresh') {
  const sub = client.newSubscription(env('PARSEC_CHANNEL'));
  const subEvents = record(sub, 'sub', SUB_EVENTS);
  sub.subscribe();
  await subEvents.next('subscribed');
  await refreshed;
  await new Promise((resolve) => setTimeout(resolve, Number(env('PARSEC_HOLD_MS'))));
  const stats = await sub.presenceStats();
  emit('state', { client: client.state, sub: sub.state, numClients: stats.numClients });
  finish(client);
} else if (scenario === 'sub') {
  const sub = client.newSubscription(env('PARSEC_CHANNEL'), {
    token: env('PARSEC_SUB_TOKEN'),
    getToken: async (ctx) => {
      emit('get_sub_token', { channel: ctx.channel });
      return env('PARSEC_FRESH_SUB_TOKEN');
    },
  });
  const subEvents = record(sub, 'sub', SUB_EVENTS);
  sub.subscribe();
  await subEvents.next('subscribed');
  finish(client);
} else {
  fail(`unknown PARSEC_SCENARIO ${scenario}`);
}
