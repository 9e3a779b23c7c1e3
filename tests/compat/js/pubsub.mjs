// Connect with PARSEC_TOKEN, subscribe to PARSEC_CHANNEL, print the PARSEC_EXPECT
// publications the test sends through cent, then history, presence and presence
// stats, then publish from this client and wait for that publication to come back.

import { CLIENT_EVENTS, SUB_EVENTS, emit, env, finish, newClient, record } from './lib.mjs';

const client = newClient({ token: env('PARSEC_TOKEN') });
const events = record(client, 'client', CLIENT_EVENTS);
const sub = client.newSubscription(env('PARSEC_CHANNEL'));
const subEvents = record(sub, 'sub', SUB_EVENTS);

client.connect();
await events.next('connected');
sub.subscribe();
await subEvents.next('subscribed');

for (let i = 0; i < Number(env('PARSEC_EXPECT')); i++) {
  await subEvents.next('publication');
}

const history = await sub.history({ limit: 10 });
emit('history', { offset: history.offset, epoch: history.epoch, publications: history.publications });
const top = await sub.history({ limit: 0 });
emit('history_top', { offset: top.offset, epoch: top.epoch, publications: top.publications });
const presence = await sub.presence();
emit('presence', { clients: presence.clients });
const stats = await sub.presenceStats();
emit('presence_stats', { numClients: stats.numClients, numUsers: stats.numUsers });

await sub.publish({ from: 'js' });
emit('published');
await subEvents.next('publication');
finish(client);
