// Shared helpers of the centrifuge-js compat scripts.
//
// Every script prints one JSON object per line on stdout: {"event": "<name>", ...}.
// SDK events are printed as {"event": "<source>.<name>", "ctx": {...}} by `record`,
// script steps with their own names. A script never hangs: after PARSEC_JS_TIMEOUT_MS
// (default 15000) it prints {"event": "timeout"} and exits with code 3; a failed step
// prints {"event": "fatal", "message": ...} and exits with code 2.

import { Centrifuge } from 'centrifuge';
import WebSocket from 'ws';
import readline from 'node:readline';

export function emit(event, fields = {}) {
  process.stdout.write(JSON.stringify({ event, ...fields }) + '\n');
}

export function fail(message) {
  emit('fatal', { message: String(message) });
  process.exit(2);
}

process.on('unhandledRejection', (reason) => fail(reason && reason.stack ? reason.stack : reason));

const timeoutMs = Number(process.env.PARSEC_JS_TIMEOUT_MS || 15000);
const deadline = setTimeout(() => {
  emit('timeout', { ms: timeoutMs });
  process.exit(3);
}, timeoutMs);

/** The value of environment variable `name`; a missing one is fatal. */
export function env(name) {
  const value = process.env[name];
  if (value === undefined || value === '') {
    fail(`environment variable ${name} is not set`);
  }
  return value;
}

/** A centrifuge-js client for PARSEC_WS_URL over the `ws` package. */
export function newClient(options = {}) {
  return new Centrifuge(env('PARSEC_WS_URL'), { websocket: WebSocket, ...options });
}

/** A JSON-safe copy of an SDK event context (drops functions and cycles). */
function plain(ctx) {
  const seen = new WeakSet();
  return JSON.parse(JSON.stringify(ctx === undefined ? null : ctx, (key, value) => {
    if (typeof value === 'function') return undefined;
    if (value instanceof Error) return { name: value.name, message: value.message, code: value.code };
    if (value !== null && typeof value === 'object') {
      if (seen.has(value)) return undefined;
      seen.add(value);
    }
    return value;
  }));
}

/**
 * Print every `names` event of `emitter` as "<source>.<name>" and queue it, so a
 * script can `await recorder.next(name)` for the next one not consumed yet.
 */
export function record(emitter, source, names) {
  const queues = new Map(names.map((name) => [name, { items: [], waiters: [] }]));
  for (const name of names) {
    emitter.on(name, (ctx) => {
      emit(`${source}.${name}`, { ctx: plain(ctx) });
      const queue = queues.get(name);
      const waiter = queue.waiters.shift();
      if (waiter) waiter(ctx);
      else queue.items.push(ctx);
    });
  }
  return {
    next(name) {
      const queue = queues.get(name);
      if (queue.items.length > 0) return Promise.resolve(queue.items.shift());
      return new Promise((resolve) => queue.waiters.push(resolve));
    },
    async until(name, predicate) {
      for (;;) {
        const ctx = await this.next(name);
        if (predicate(ctx)) return ctx;
      }
    },
  };
}

export const CLIENT_EVENTS = ['connecting', 'connected', 'disconnected', 'error', 'subscribed', 'publication'];
export const SUB_EVENTS = ['subscribing', 'subscribed', 'unsubscribed', 'publication', 'join', 'leave', 'error'];

const stdinLines = readline.createInterface({ input: process.stdin });
const lineQueue = [];
const lineWaiters = [];
stdinLines.on('line', (line) => {
  const waiter = lineWaiters.shift();
  if (waiter) waiter(line.trim());
  else lineQueue.push(line.trim());
});

/** The next line the test writes to this script's stdin. */
export function nextLine() {
  if (lineQueue.length > 0) return Promise.resolve(lineQueue.shift());
  return new Promise((resolve) => lineWaiters.push(resolve));
}

/** Disconnect `client`, print {"event": "done"} and exit 0. */
export function finish(client) {
  client.disconnect();
  clearTimeout(deadline);
  emit('done');
  stdinLines.close();
  process.exit(0);
}
