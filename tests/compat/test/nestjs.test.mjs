// NestJS microservices (@nestjs/microservices, Transport.KAFKA over kafkajs):
// an @EventPattern handler receives exactly what ClientKafka.emit sent, and
// @MessagePattern request/reply through ClientKafka.send with
// subscribeToResponseOf answers through the `.reply` topic. The app is
// tests/compat/nestjs/app.mjs, run in this process.
import { before, after } from 'node:test';
import assert from 'node:assert/strict';
import { lastValueFrom } from 'rxjs';
import { startBroker, createTopic, scenario, uniq, client, readPartition, until, sleep, failed } from '../lib/harness.mjs';
import { startMicroservice, startClient } from '../nestjs/app.mjs';

let broker;
let kafka;
let admin;
let service;
let nestClient;
const eventTopic = uniq('nest-orders-placed');
const requestTopic = uniq('nest-math-sum');
const replyTopic = `${requestTopic}.reply`;

before(async () => {
  broker = await startBroker();
  kafka = client(broker.bootstrap);
  admin = kafka.admin();
  await admin.connect();
  // Nest expects its topics to exist (the reply topic included).
  for (const t of [eventTopic, requestTopic, replyTopic]) await createTopic(admin, kafka, t, 1);
  const brokers = [broker.bootstrap];
  service = await startMicroservice({
    brokers, clientId: uniq('nest-orders'), groupId: uniq('nest-orders'), eventTopic, requestTopic,
  });
  nestClient = await startClient({
    brokers, clientId: uniq('nest-caller'), groupId: uniq('nest-caller'), responsesOf: [requestTopic],
  });
});

after(async () => {
  await nestClient?.ctx.close();
  await service?.app.close();
  await admin?.disconnect();
  await broker?.stop({ printLog: failed() });
});

const str = b => (b == null ? b : b.toString());

scenario('NestJS: @EventPattern handler receives exactly what ClientKafka.emit sent (value, key, headers)', 60_000, async () => {
  const { client: c } = nestClient;
  await lastValueFrom(
    c.emit(eventTopic, { key: 'order-42', value: { id: 42, item: 'tea', qty: 3 }, headers: { 'x-trace': 'trace-1' } }),
    { defaultValue: null },
  );
  await until(() => service.events.length >= 1, { what: 'the event handler to run', timeoutMs: 30_000 });
  await sleep(500); // nothing more may arrive
  assert.deepEqual(service.events, [
    {
      data: { id: 42, item: 'tea', qty: 3 },
      key: 'order-42',
      headers: { 'x-trace': 'trace-1' },
      topic: eventTopic,
      partition: 0,
      offset: '0',
    },
  ]);
  // what the broker holds: one record, the value JSON-encoded by Nest
  const stored = await readPartition(kafka, eventTopic, 0);
  assert.deepEqual(
    stored.map(m => ({ offset: m.offset, key: str(m.key), value: str(m.value), headers: Object.fromEntries(Object.entries(m.headers).map(([k, v]) => [k, str(v)])) })),
    [{ offset: 0, key: 'order-42', value: '{"id":42,"item":"tea","qty":3}', headers: { 'x-trace': 'trace-1' } }],
  );
});

scenario('NestJS: @MessagePattern request/reply via ClientKafka.send answers each request through the .reply topic', 60_000, async () => {
  const { client: c } = nestClient;
  const inputs = [[1, 2, 3, 4], [10, 20], []];
  // one at a time, so request and reply offsets are in this order
  const answers = [];
  for (const [i, numbers] of inputs.entries()) {
    answers.push(await lastValueFrom(c.send(requestTopic, { key: `req-${i}`, value: { numbers } })));
  }
  assert.deepEqual(answers, [
    { sum: 10, count: 4, requestKey: 'req-0' },
    { sum: 30, count: 2, requestKey: 'req-1' },
    { sum: 0, count: 0, requestKey: 'req-2' },
  ]);
  assert.deepEqual(service.requests.map(r => [r.key, r.data]), inputs.map((numbers, i) => [`req-${i}`, { numbers }]));

  // the requests carry Nest's reply routing headers
  const reqs = await readPartition(kafka, requestTopic, 0);
  assert.equal(reqs.length, 3);
  const correlationIds = [];
  for (const [i, m] of reqs.entries()) {
    assert.equal(m.offset, i);
    assert.equal(str(m.key), `req-${i}`);
    assert.equal(str(m.value), JSON.stringify({ numbers: inputs[i] }));
    assert.equal(str(m.headers.kafka_replyTopic), replyTopic);
    assert.equal(str(m.headers.kafka_replyPartition), '0');
    assert.match(str(m.headers.kafka_correlationId), /\S/);
    correlationIds.push(str(m.headers.kafka_correlationId));
  }
  assert.equal(new Set(correlationIds).size, 3);

  // the replies: one per request, its answer with Nest's "disposed" header
  // (a handler returning a plain value completes with its one answer)
  const replies = await readPartition(kafka, replyTopic, 0);
  const shape = replies.map(m => ({
    offset: m.offset,
    value: str(m.value),
    correlationId: str(m.headers.kafka_correlationId),
    disposed: 'kafka_nest-is-disposed' in m.headers,
  }));
  const expected = [];
  for (const [i, numbers] of inputs.entries()) {
    const value = JSON.stringify({ sum: numbers.reduce((a, b) => a + b, 0), count: numbers.length, requestKey: `req-${i}` });
    expected.push({ value, correlationId: correlationIds[i], disposed: true });
  }
  assert.deepEqual(shape, expected.map((e, offset) => ({ offset, ...e })));
});
