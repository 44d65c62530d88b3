// A small NestJS microservice on Transport.KAFKA (kafkajs underneath) and a
// ClientKafka, for test/nestjs.test.mjs. Plain JavaScript: the decorators
// (@Controller, @EventPattern, @MessagePattern, @Payload, @Ctx, @Module) are
// applied with Reflect.decorate, which is what TypeScript compiles them to.
import 'reflect-metadata';
import { Controller, Module } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { ClientsModule, Ctx, EventPattern, MessagePattern, Payload, Transport } from '@nestjs/microservices';

const LOGGER = ['error', 'warn'];
// Consumers use maxWaitTimeInMs 200 (kafkajs default 5000): a consumer's
// disconnect waits for its in-flight Fetch, so closing is fast.

function decorateMethod(cls, name, decorators, params = []) {
  for (const [index, decorator] of params.entries()) decorator(cls.prototype, name, index);
  const descriptor = Object.getOwnPropertyDescriptor(cls.prototype, name);
  Object.defineProperty(cls.prototype, name, Reflect.decorate(decorators, cls.prototype, name, descriptor));
}

/**
 * Starts the microservice: `@EventPattern(eventTopic)` records every event it
 * receives in `events`; `@MessagePattern(requestTopic)` answers
 * { sum, count, requestKey } for a { numbers } request.
 */
export async function startMicroservice({ brokers, clientId, groupId, eventTopic, requestTopic }) {
  const events = [];
  const requests = [];

  class OrdersController {
    onOrderPlaced(data, context) {
      const m = context.getMessage();
      events.push({
        data,
        key: m.key,
        headers: m.headers,
        topic: context.getTopic(),
        partition: context.getPartition(),
        offset: m.offset,
      });
    }

    sum(data, context) {
      const key = context.getMessage().key;
      requests.push({ data, key, headers: context.getMessage().headers });
      // (not a field named `key` or `value`: Nest's serializer would take
      // such an object for a Kafka message { key, value })
      return { sum: data.numbers.reduce((a, b) => a + b, 0), count: data.numbers.length, requestKey: key };
    }
  }
  decorateMethod(OrdersController, 'onOrderPlaced', [EventPattern(eventTopic)], [Payload(), Ctx()]);
  decorateMethod(OrdersController, 'sum', [MessagePattern(requestTopic)], [Payload(), Ctx()]);
  Reflect.decorate([Controller()], OrdersController);

  class OrdersModule {}
  Reflect.decorate([Module({ controllers: [OrdersController] })], OrdersModule);

  const app = await NestFactory.createMicroservice(OrdersModule, {
    transport: Transport.KAFKA,
    logger: LOGGER,
    options: {
      client: { clientId, brokers, retry: { retries: 8 } },
      consumer: { groupId, sessionTimeout: 10_000, heartbeatInterval: 500, rebalanceTimeout: 10_000, maxWaitTimeInMs: 200 },
      subscribe: { fromBeginning: true },
    },
  });
  await app.listen();
  return { app, events, requests };
}

export const KAFKA_CLIENT = 'VLTAVA_KAFKA_CLIENT';

/** A Nest application context holding a ClientKafka (ClientsModule.register). */
export async function startClient({ brokers, clientId, groupId, responsesOf = [] }) {
  class ClientModule {}
  Reflect.decorate(
    [
      Module({
        imports: [
          ClientsModule.register([
            {
              name: KAFKA_CLIENT,
              transport: Transport.KAFKA,
              options: {
                client: { clientId, brokers, retry: { retries: 8 } },
                consumer: { groupId, sessionTimeout: 10_000, heartbeatInterval: 500, rebalanceTimeout: 10_000, maxWaitTimeInMs: 200 },
              },
            },
          ]),
        ],
      }),
    ],
    ClientModule,
  );
  const ctx = await NestFactory.createApplicationContext(ClientModule, { logger: LOGGER });
  const client = ctx.get(KAFKA_CLIENT);
  for (const pattern of responsesOf) client.subscribeToResponseOf(pattern);
  await client.connect();
  return { ctx, client };
}
