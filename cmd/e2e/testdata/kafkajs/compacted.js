// compacted.js uses a compacted topic the way a Kafka Connect or Schema
// Registry style store does, with kafkajs 2.2.4, for cmd/e2e's
// TestCompactedTopicKafkajs.
//
// Usage: node compacted.js produce|read '<json config>'
//   config: {broker, topic, partitions, configs: {name: value}, create,
//            nullKey, groupId, timeoutMs}
//
// produce reads the records to write from stdin, as JSON
//   [{partition, key, value}]   (value null: a tombstone)
// With create it first creates the topic with kafkajs's admin
// (cleanup.policy=compact and the other configs) and reads its configs back
// with describeConfigs. It writes the records in order (acks=-1, a few
// hundred a request), and then, with nullKey, tries a record without a key.
// It prints
//   {version, configs: {name: value}, acked: [{partition, offset}],
//    nullKey: {name, type, code, retriable, message} | null}
// acked in the order of the input; nullKey is the error kafkajs raised
// for the key-less record (null if it was accepted or not tried).
//
// read consumes the topic from offset 0 with a kafkajs consumer in the new
// group groupId until every partition is read up to its high watermark, and
// prints
//   {records: [{partition, offset, key, value}], highs: {partition: high}}
//
// Both exit non-zero on any other error; kafkajs's own logs go to stderr.
'use strict'

const { Kafka, logLevel } = require('kafkajs')
const { version } = require('kafkajs/package.json')

const mode = process.argv[2]
const cfg = JSON.parse(process.argv[3])
const deadline = Date.now() + (cfg.timeoutMs || 60000)

const toStderr = () => ({ namespace, level, log }) => {
  const { message, ...extra } = log
  process.stderr.write(`kafkajs ${namespace} ${level}: ${message} ${JSON.stringify(extra)}\n`)
}

const kafka = new Kafka({
  clientId: 'strata-e2e-compacted',
  brokers: [cfg.broker],
  logLevel: logLevel.WARN,
  logCreator: toStderr,
  retry: { retries: 8 },
})

async function readStdin() {
  const chunks = []
  for await (const c of process.stdin) chunks.push(c)
  return JSON.parse(Buffer.concat(chunks).toString())
}

// create creates the compacted topic and returns its configs as
// describeConfigs reports them.
async function create() {
  const admin = kafka.admin()
  await admin.connect()
  const configs = {}
  try {
    const created = await admin.createTopics({
      waitForLeaders: true,
      topics: [{
        topic: cfg.topic,
        numPartitions: cfg.partitions,
        replicationFactor: 1,
        configEntries: Object.entries(cfg.configs).map(([name, value]) => ({ name, value })),
      }],
    })
    if (!created) throw new Error(`createTopics: topic ${cfg.topic} already existed`)
    const desc = await admin.describeConfigs({
      includeSynonyms: false,
      resources: [{ type: 2 /* TOPIC */, name: cfg.topic }],
    })
    for (const e of desc.resources[0].configEntries) configs[e.configName] = e.configValue
  } finally {
    await admin.disconnect()
  }
  return configs
}

async function produce() {
  const records = await readStdin()
  const configs = cfg.create ? await create() : {}
  const producer = kafka.producer({ allowAutoTopicCreation: false, idempotent: false })
  await producer.connect()
  const acked = []
  let nullKey = null
  try {
    const chunk = 250
    for (let start = 0; start < records.length; start += chunk) {
      const messages = records.slice(start, start + chunk).map(r => ({
        partition: r.partition,
        key: r.key,
        value: r.value, // null: a tombstone
      }))
      const meta = await producer.send({ topic: cfg.topic, acks: -1, messages })
      // One send is one batch per partition; records in a partition get
      // consecutive offsets from its baseOffset, in send order.
      const base = {}
      for (const m of meta) {
        if (m.errorCode !== 0) throw new Error(`produce error ${m.errorCode} on partition ${m.partition}`)
        base[m.partition] = BigInt(m.baseOffset)
      }
      for (const m of messages) {
        acked.push({ partition: m.partition, offset: (base[m.partition]++).toString() })
      }
    }
    if (cfg.nullKey) {
      try {
        await producer.send({ topic: cfg.topic, acks: -1, messages: [{ partition: 0, key: null, value: 'no key' }] })
      } catch (e) {
        // kafkajs wraps the broker's error (a KafkaJSProtocolError with
        // the code) in the error its retrier gives up with.
        let cause = e
        while (cause && cause.type === undefined && cause.cause && cause.cause !== cause) cause = cause.cause
        nullKey = { name: cause.name, type: cause.type || null, code: cause.code ?? null, retriable: cause.retriable ?? null, message: String(cause.message) }
      }
    }
  } finally {
    await producer.disconnect()
  }
  return { version, configs, acked, nullKey }
}

async function read() {
  const admin = kafka.admin()
  await admin.connect()
  const highs = {}
  try {
    for (const o of await admin.fetchTopicOffsets(cfg.topic)) highs[o.partition] = BigInt(o.high)
  } finally {
    await admin.disconnect()
  }
  const next = {} // per partition: the offset after the last record read
  for (const p of Object.keys(highs)) next[p] = 0n
  const done = () => Object.keys(highs).every(p => next[p] >= highs[p])

  const records = []
  const consumer = kafka.consumer({ groupId: cfg.groupId, maxWaitTimeInMs: 200, sessionTimeout: 10000 })
  await consumer.connect()
  try {
    await consumer.subscribe({ topic: cfg.topic, fromBeginning: true })
    await consumer.run({
      eachMessage: async ({ partition, message }) => {
        records.push({
          partition,
          offset: message.offset,
          key: message.key == null ? null : message.key.toString(),
          value: message.value == null ? null : message.value.toString(),
        })
        next[partition] = BigInt(message.offset) + 1n
      },
    })
    while (!done()) {
      if (Date.now() > deadline) {
        throw new Error(`read ${records.length} records before the deadline; next offsets ${JSON.stringify(next, (k, v) => typeof v === 'bigint' ? v.toString() : v)}`)
      }
      await new Promise(r => setTimeout(r, 50))
    }
  } finally {
    await consumer.disconnect()
  }
  const h = {}
  for (const [p, v] of Object.entries(highs)) h[p] = v.toString()
  return { records, highs: h }
}

const modes = { produce, read }
if (!(mode in modes)) throw new Error(`unknown mode ${mode}: want produce or read`)
modes[mode]()
  .then(res => process.stdout.write(JSON.stringify(res) + '\n'))
  .catch(err => {
    process.stderr.write(`compacted.js ${mode}: ${err && err.stack ? err.stack : err}\n`)
    process.exit(1)
  })
