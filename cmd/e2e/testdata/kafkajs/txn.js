// txn.js runs kafkajs 2.2.4 transactions for cmd/e2e's
// TestKafkaJSTransactions (txn_clients_test.go says what the Go side checks).
//
// Usage: node txn.js '<json config>'
//   config: {broker, topic, inTopic, group, readGroup, txnId, timeoutMs}
//
// The sequence, all with transactional id txnId, writing to topic and
// committing offsets of inTopic partition 0 for group through
// transaction.sendOffsets:
//   1. p1: commit-0..2 and offset 42, committed;
//   2. p1: abort-0..2 and offset 99, aborted;
//   3. p1: zombie1-0 and offset 66; then p2 connects (InitProducerId with
//      the same id), which fences p1; p1's commit must fail;
//   4. p2: zombie2-0; then p3 connects and fences p2; p2's next send
//      (zombie2-1) and its commit must fail;
//   5. p3: successor-0..1 and offset 77, committed.
// The group's committed offset is read with kafkajs's admin.fetchOffsets at
// each checkpoint, and a read_committed kafkajs consumer (readUncommitted:
// false, in its own group readGroup) reads topic from the start up to
// successor-1.
//
// It prints one JSON object on stdout:
//   {client, version, readCommitted: [value], offsets: {checkpoint: offset},
//    fenced: {op: {ok, code, message}}}
// and exits non-zero on any unexpected error. kafkajs's logs go to stderr.
'use strict'

const { Kafka, logLevel } = require('kafkajs')
const { version } = require('kafkajs/package.json')

const cfg = JSON.parse(process.argv[2])
const deadline = Date.now() + (cfg.timeoutMs || 60000)

const toStderr = () => ({ namespace, level, log }) => {
  const { message, ...extra } = log
  process.stderr.write(`kafkajs ${namespace} ${level}: ${message} ${JSON.stringify(extra)}\n`)
}

const kafka = new Kafka({
  clientId: 'strata-e2e-txn',
  brokers: [cfg.broker],
  logLevel: logLevel.WARN,
  logCreator: toStderr,
  retry: { retries: 5 },
})

const log = msg => process.stderr.write(`txn.js: ${msg}\n`)

function newProducer() {
  return kafka.producer({
    transactionalId: cfg.txnId,
    idempotent: true,
    maxInFlightRequests: 1,
    allowAutoTopicCreation: true,
    transactionTimeout: 30000,
    // Bounded, so that a retriable error where a fencing error belongs
    // shows up as that error rather than as the Go test's timeout (kafkajs
    // warns about it on stderr).
    retry: { retries: 5, initialRetryTime: 100 },
  })
}

async function send(txn, prefix, n) {
  const messages = []
  for (let i = 0; i < n; i++) messages.push({ partition: 0, key: `${prefix}-key-${i}`, value: `${prefix}-${i}` })
  return txn.send({ topic: cfg.topic, acks: -1, messages })
}

async function sendOffsets(txn, offset) {
  await txn.sendOffsets({
    consumerGroupId: cfg.group,
    topics: [{ topic: cfg.inTopic, partitions: [{ partition: 0, offset: String(offset) }] }],
  })
}

// protocolType digs the Kafka error name out of a kafkajs error, which may
// wrap it (KafkaJSNumberOfRetriesExceeded, KafkaJSNonRetriableError).
function protocolType(err) {
  for (let e = err, depth = 0; e && depth < 10; e = e.cause || e.originalError, depth++) {
    if (e.type) return e.type
  }
  return err && err.name ? err.name : String(err)
}

// expectFailure runs op, which must throw; it returns what the error was.
async function expectFailure(what, op) {
  try {
    await op()
  } catch (err) {
    log(`${what} failed as expected: ${err.stack || err}`)
    return { ok: false, code: protocolType(err), message: String(err && err.message) }
  }
  log(`${what} succeeded, but it must fail`)
  return { ok: true, code: '', message: '' }
}

async function committedOffset(admin) {
  const res = await admin.fetchOffsets({ groupId: cfg.group, topics: [cfg.inTopic] })
  for (const t of res) {
    if (t.topic !== cfg.inTopic) continue
    for (const p of t.partitions) if (p.partition === 0) return Number(p.offset)
  }
  throw new Error(`fetchOffsets: no partition 0 of ${cfg.inTopic} in ${JSON.stringify(res)}`)
}

async function readCommitted(last) {
  const consumer = kafka.consumer({
    groupId: cfg.readGroup,
    readUncommitted: false,
    maxWaitTimeInMs: 200,
    heartbeatInterval: 300,
    sessionTimeout: 10000,
  })
  const values = []
  let done = false
  await consumer.connect()
  try {
    await consumer.subscribe({ topic: cfg.topic, fromBeginning: true })
    await consumer.run({
      autoCommit: false,
      eachMessage: async ({ message }) => {
        const v = message.value == null ? '<nil>' : message.value.toString()
        values.push(v)
        if (v === last) done = true
      },
    })
    while (!done) {
      if (Date.now() > deadline) throw new Error(`read_committed consumer: no ${last} before the deadline; got ${JSON.stringify(values)}`)
      await new Promise(r => setTimeout(r, 50))
    }
  } finally {
    await consumer.disconnect()
  }
  return values
}

async function main() {
  const admin = kafka.admin()
  await admin.connect()
  const offsets = {}
  const fenced = {}
  const producers = []
  try {
    const p1 = newProducer()
    producers.push(p1)
    await p1.connect()

    let txn = await p1.transaction()
    await send(txn, 'commit', 3)
    await sendOffsets(txn, 42)
    await txn.commit()
    offsets.afterCommit = await committedOffset(admin)

    txn = await p1.transaction()
    await send(txn, 'abort', 3)
    await sendOffsets(txn, 99)
    offsets.beforeAbort = await committedOffset(admin)
    await txn.abort()
    offsets.afterAbort = await committedOffset(admin)

    // p1 becomes a zombie: p2 initialises the same transactional id while
    // p1's transaction is open.
    const zombie1 = await p1.transaction()
    await send(zombie1, 'zombie1', 1)
    await sendOffsets(zombie1, 66)
    const p2 = newProducer()
    producers.push(p2)
    await p2.connect()
    const txn2 = await p2.transaction() // kafkajs sends InitProducerId here
    offsets.afterFence = await committedOffset(admin)
    fenced.commitAfterFence = await expectFailure('zombie p1 commit', () => zombie1.commit())

    // p2 becomes a zombie in turn, with a send after p3's InitProducerId.
    await send(txn2, 'zombie2', 1)
    const p3 = newProducer()
    producers.push(p3)
    await p3.connect()
    const txn3 = await p3.transaction()
    fenced.produceAfterFence = await expectFailure('zombie p2 send', () => send(txn2, 'zombie2-late', 1))
    fenced.commitAfterFailedProduce = await expectFailure('zombie p2 commit', () => txn2.commit())

    await send(txn3, 'successor', 2)
    await sendOffsets(txn3, 77)
    await txn3.commit()
    offsets.final = await committedOffset(admin)
  } finally {
    for (const p of producers) await p.disconnect().catch(err => log(`disconnect: ${err}`))
    await admin.disconnect()
  }
  const readCommittedValues = await readCommitted('successor-1')
  process.stdout.write(JSON.stringify({ client: 'kafkajs', version, readCommitted: readCommittedValues, offsets, fenced }) + '\n')
}

main().catch(err => {
  process.stderr.write(`txn.js: ${err && err.stack ? err.stack : err}\n`)
  process.exit(1)
})
