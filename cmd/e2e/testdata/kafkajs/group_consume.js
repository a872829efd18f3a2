// group_consume.js runs kafkajs 2.2.4 consumers in one consumer group while
// it produces, for cmd/e2e's TestGroupKafkajs.
//
// Usage: node group_consume.js '<json config>'
//   config: {broker, topic, groupId, count, partitions, timeoutMs}
//
// The sequence, with records flowing throughout:
//   1. produce the first third; member m1 joins and processes it;
//   2. m2 joins while the second third is produced;
//   3. m3 joins, m1 leaves, while the last third is produced;
//   4. m2 and m3 leave once everything was processed.
// A member that joins after the records of its phase were consumed gets a
// trickle of extra records until it takes part (ids from count on).
// Members commit as kafkajs users do by default (autoCommit, and on every
// rebalance and disconnect).
//
// It prints one JSON object on stdout:
//   {version, produced: [rec], consumed: [{member, partition, offset}]}
//   rec: {partition, offset, key, value, headers: [[key, value]]}
// and exits non-zero on any error. kafkajs's own logs go to stderr.
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
  clientId: 'strata-e2e-group',
  brokers: [cfg.broker],
  logLevel: logLevel.WARN,
  logCreator: toStderr,
  retry: { retries: 10 },
})

const produced = []
const consumed = []
const seen = new Set()
const byMember = {}

async function produceRange(producer, from, to) {
  const chunk = 25
  for (let start = from; start < to; start += chunk) {
    const messages = []
    for (let i = start; i < Math.min(start + chunk, to); i++) {
      messages.push({
        partition: i % cfg.partitions,
        key: `kafkajs-group-key-${i}`,
        value: `kafkajs-group-value-${i}`,
        headers: { seq: String(i) },
      })
    }
    const meta = await producer.send({ topic: cfg.topic, acks: -1, messages })
    const base = {}
    for (const m of meta) {
      if (m.errorCode !== 0) throw new Error(`produce error ${m.errorCode} on partition ${m.partition}`)
      base[m.partition] = BigInt(m.baseOffset)
    }
    for (const m of messages) {
      produced.push({
        partition: m.partition,
        offset: (base[m.partition]++).toString(),
        key: m.key,
        value: m.value,
        headers: Object.entries(m.headers),
      })
    }
    await new Promise(r => setTimeout(r, 20))
  }
}

async function startMember(name) {
  const consumer = kafka.consumer({
    groupId: cfg.groupId,
    heartbeatInterval: 300,
    sessionTimeout: 10000,
    rebalanceTimeout: 20000,
    maxWaitTimeInMs: 200,
  })
  byMember[name] = 0
  await consumer.connect()
  await consumer.subscribe({ topic: cfg.topic, fromBeginning: true })
  await consumer.run({
    autoCommitInterval: 100,
    eachMessage: async ({ partition, message }) => {
      consumed.push({ member: name, partition, offset: message.offset })
      seen.add(`${partition}/${message.offset}`)
      byMember[name]++
    },
  })
  return consumer
}

async function until(what, cond) {
  while (!cond()) {
    if (Date.now() > deadline) {
      throw new Error(`timed out waiting for ${what}: ${seen.size} distinct records processed, by member ${JSON.stringify(byMember)}`)
    }
    await new Promise(r => setTimeout(r, 50))
  }
}

// trickleUntil produces one record per partition every 100ms until cond
// holds, so a member that joined after a batch was consumed still gets
// records however long its rebalance takes.
let extra = 0
async function trickleUntil(producer, what, cond) {
  while (!cond()) {
    if (Date.now() > deadline) {
      throw new Error(`timed out waiting for ${what}: by member ${JSON.stringify(byMember)}`)
    }
    const from = cfg.count + extra
    extra += cfg.partitions
    await produceRange(producer, from, from + cfg.partitions)
    await new Promise(r => setTimeout(r, 100))
  }
}

async function main() {
  const producer = kafka.producer({ allowAutoTopicCreation: true, idempotent: false })
  await producer.connect()
  const third = Math.floor(cfg.count / 3)
  try {
    await produceRange(producer, 0, third)
    const m1 = await startMember('m1')
    await until('m1 to process the first third', () => seen.size >= third)

    const flow2 = produceRange(producer, third, 2 * third)
    const m2 = await startMember('m2')
    await flow2
    await trickleUntil(producer, 'm2 to take part', () => byMember.m2 > 0)
    await until('the second third', () => seen.size >= produced.length)

    const flow3 = produceRange(producer, 2 * third, cfg.count)
    const m3 = await startMember('m3')
    await trickleUntil(producer, 'm3 to take part', () => byMember.m3 > 0)
    await m1.disconnect()
    await flow3
    await until('every record', () => seen.size >= produced.length)
    await m2.disconnect()
    await m3.disconnect()
  } finally {
    await producer.disconnect()
  }
  process.stdout.write(JSON.stringify({ version, produced, consumed }) + '\n')
}

main().catch(err => {
  process.stderr.write(`group_consume.js: ${err.stack || err}\n`)
  process.exit(1)
})
