/**
 * The email worker (`npm run worker`): outbox relay + RabbitMQ consumer + SMTP + outbox
 * retention, following the shard map in etcd. Several may run. SIGTERM: stop purging and
 * claiming, finish in-flight delivery batches, close connections. Metrics and the worker's
 * breakers on SHARDGATE_WORKER_METRICS_PORT when set (worker-http.ts), bound to
 * SHARDGATE_LISTEN_HOST (loopback by default).
 */

import { createServer } from 'node:http';
import { hostname } from 'node:os';
import { registerConfigMetrics } from '../config/config-metrics.js';
import { createEtcdClient } from '../config/etcd-client.js';
import { EtcdConfigStore } from '../config/etcd-config-store.js';
import { routeGrpcLog } from '../config/grpc-log.js';
import { shardPassword } from '../db/shard-password.js';
import { EnvError, etcdCredentials, parseEnv } from '../env.js';
import { AmqpConnection } from '../mail/amqp-connection.js';
import { LostMailSweep, readyInMailQueues } from '../mail/lost-mail-sweep.js';
import { MailConsumer } from '../mail/mail-consumer.js';
import { OutboxRelay } from '../mail/outbox-relay.js';
import { OutboxRetention } from '../mail/outbox-retention.js';
import { OutboxStore } from '../mail/outbox-store.js';
import { registerPublishingBlockedGauge } from '../mail/publishing-blocked-gauge.js';
import { registerQueueGauges } from '../mail/queue-gauges.js';
import { SmtpSender } from '../mail/smtp-sender.js';
import { LogDestination } from '../observability/log-destination.js';
import { createLogger } from '../observability/logger.js';
import { createPromMetrics } from '../observability/prom-metrics.js';
import { BreakerRegistry } from '../resilience/breaker-registry.js';
import { readBuildInfo, registerBuildInfo } from './build-info.js';
import { softOpenFiles, warnIfFewOpenFiles } from './file-limit.js';
import { workerHttpHandler } from './worker-http.js';

function loadEnv() {
  try {
    return parseEnv(process.env, { require: ['SHARDGATE_DB_PASSWORD'] });
  } catch (error) {
    if (error instanceof EnvError) {
      console.error(`shardgate worker: ${error.message}`);
      process.exit(1);
    }
    throw error;
  }
}

const env = loadEnv();
const id = `${env.SHARDGATE_INSTANCE_ID ?? hostname()}-worker`;
// a log destination that refuses lines (a full disk) drops and counts them: it never stops the
// process (log-destination.ts)
const logDestination = new LogDestination();
const logger = createLogger({ level: env.LOG_LEVEL, base: { instance: id }, destination: logDestination });
routeGrpcLog(logger);
warnIfFewOpenFiles(logger, 'email worker');
const etcd = createEtcdClient({ endpoints: env.SHARDGATE_ETCD_ENDPOINTS, auth: etcdCredentials(env) });
const config = new EtcdConfigStore({
  client: etcd,
  prefix: env.SHARDGATE_ETCD_PREFIX,
  logger,
  dbHosts: env.SHARDGATE_DB_HOSTS,
});
const metrics = createPromMetrics({ defaultLabels: { instance: id }, softOpenFiles });
logDestination.countDropsIn(metrics);
registerBuildInfo(metrics, readBuildInfo());
const breakers = new BreakerRegistry({ config, logger, metrics, softFileLimit: softOpenFiles });
const store = new OutboxStore({
  config,
  breakers,
  logger,
  user: env.SHARDGATE_DB_USER,
  password: (name) => shardPassword(env, name),
});
// unacked messages per consumer channel: single mails (retries) or the relay's batch messages
// of up to MAILS_PER_BATCH mails each, so up to 16 × 8 mails taken at once; batches beyond the
// SMTP sessions wait for them in turn (smtp-sender.ts), each holding only its own rows' locks
const prefetch = 16;
// rows per relay message = the largest delivery batch per shard: a batch message is delivered
// in one transaction
const MAILS_PER_BATCH = 8;
// Three connections, named for the broker's list: a broker in a resource alarm stops reading a
// connection once it publishes (acks, cancels and queue checks on it included), so the consumer
// takes and acks mails on one that never publishes, the relay publishes the outbox on another,
// and a failed mail's retry goes on a third (opened at the first retry), so that neither
// publisher's dropped connection (a timeout, a tier deleted by hand) fails the other's publishes.
const connection = (role: string, more: { prefetch?: number } = {}) =>
  new AmqpConnection({ url: env.SHARDGATE_AMQP_URL, breakers, logger, name: `${id} ${role}`, ...more });
const amqp = connection('consume', { prefetch });
const publisher = connection('outbox');
const retries = connection('retries');
// Persistent SMTP sessions, one per mail of a batch until the batch commits: batches (per
// shard) of up to 8 mails, two of them at a time. Idle sessions are reused; only bursts open more.
const smtp = new SmtpSender({
  url: env.SHARDGATE_SMTP_URL,
  from: env.SHARDGATE_MAIL_FROM,
  maxSessions: 16,
});
const relay = new OutboxRelay({ store, amqp: publisher, logger, metrics, mailsPerMessage: MAILS_PER_BATCH });
registerQueueGauges({ amqp, metrics });
// the live config, as the API instances export it: a rejected key is seen without its log
registerConfigMetrics(metrics, config);
registerPublishingBlockedGauge(metrics, { outbox: publisher, retries });
// deletes delivered rows older than `mail/outbox_retention_hours` (etcd, live)
const retention = new OutboxRetention({ store, config, logger, metrics });
const consumer = new MailConsumer({
  amqp,
  reroutes: retries,
  store,
  smtp,
  logger,
  metrics,
  maxAttempts: env.SHARDGATE_MAIL_MAX_ATTEMPTS,
  maxBatch: MAILS_PER_BATCH,
});

// re-publishes rows the broker dropped after confirming them (purge, drop-head, TTL policies):
// only while the queues are empty and no delivery is in flight here (lost-mail-sweep.ts)
const sweep = new LostMailSweep({
  store,
  readyMessages: readyInMailQueues(amqp),
  publishingBlockedForMs: () => publisher.blockedForMs(),
  deliveries: () => consumer.deliveries(),
  logger,
  metrics,
});

const metricsServer =
  env.SHARDGATE_WORKER_METRICS_PORT > 0
    ? createServer(workerHttpHandler({ metrics, breakers, config })).listen(
        env.SHARDGATE_WORKER_METRICS_PORT,
        env.SHARDGATE_LISTEN_HOST,
      )
    : undefined;

await config.start();
relay.start();
consumer.start();
retention.start();
sweep.start();
logger.info({ maxAttempts: env.SHARDGATE_MAIL_MAX_ATTEMPTS }, 'email worker started');

let stopping = false;
async function shutdown(signal: string): Promise<void> {
  if (stopping) process.exit(1);
  stopping = true;
  logger.info({ signal }, 'email worker stopping');
  await retention.stop();
  await sweep.stop();
  await relay.stop();
  await consumer.stop();
  await Promise.all([amqp.close(), publisher.close(), retries.close()]);
  smtp.close();
  await store.close();
  await config.close();
  etcd.close();
  metricsServer?.close();
  process.exit(0);
}
process.on('SIGTERM', () => void shutdown('SIGTERM'));
process.on('SIGINT', () => void shutdown('SIGINT'));
