// Bad input. Connect with PARSEC_TOKEN. Without PARSEC_CHANNEL, wait for the client to
// be disconnected (a bad token is terminal). With PARSEC_CHANNEL, subscribe to it and
// wait for the subscription to be unsubscribed. Then print the states and exit.

import { CLIENT_EVENTS, SUB_EVENTS, emit, env, finish, newClient, record } from './lib.mjs';

const client = newClient({ token: env('PARSEC_TOKEN') });
const events = record(client, 'client', CLIENT_EVENTS);
const channel = process.env.PARSEC_CHANNEL;
client.connect();

if (channel) {
  await events.next('connected');
  const sub = client.newSubscription(channel);
  const subEvents = record(sub, 'sub', SUB_EVENTS);
  sub.subscribe();
  await subEvents.next('unsubscribed');
  emit('state', { client: client.state, sub: sub.state });
} else {
  await events.next('disconnected');
  emit('state', { client: client.state });
}
finish(client);
