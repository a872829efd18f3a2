// produce_fetch.js produces records with kafkajs 2.2.4 and reads them back
// with kafkajs's own Fetch request and decoder, for cmd/e2e's TestKafkajs.
//
// Usage: node produce_fetch.js '<json config>'
//   config: {broker, topic, count, partitions, compression: "none"|"gzip"}
//
// It prints one JSON object on stdout:
//   {version, produced: [rec], offsets: [{partition, low, high}], fetched: [rec]}
//   rec: {partition, offset, key, value, headers: [[key, value]]}
// and exits non-zero on any error. kafkajs's own logs go to stderr.
//
// The read half uses kafkajs's cluster and broker objects (the code its
// consumer runs for every fetch: request encoding, record batch and
// decompression decoding) without a consumer group, so a fetch fault is not
// tangled with group rebalancing; group_consume.js covers consumer.run().
'use strict'

const { Kafka, CompressionTypes, logLevel } = require('kafkajs')
const { version } = require('kafkajs/package.json')

const cfg = JSON.parse(process.argv[2])
const deadline = Date.now() + (cfg.timeoutMs || 60000)

const codecs = { none: CompressionTypes.None, gzip: CompressionTypes.GZIP }
if (!(cfg.compression in codecs)) {
  throw new Error(`unsupported compression ${cfg.compression} (kafkajs has no built-in zstd)`)
}

// kafkajs logs with console.log by default, which would mix with the JSON
// result on stdout.
const toStderr = () => ({ namespace, level, log }) => {
  const { message, ...extra } = log
  process.stderr.write(`kafkajs ${namespace} ${level}: ${message} ${JSON.stringify(extra)}\n`)
}

const kafka = new Kafka({
  clientId: 'strata-e2e',
  brokers: [cfg.broker],
  logLevel: logLevel.WARN,
  logCreator: toStderr,
  retry: { retries: 8 },
})

const headerPairs = headers =>
  Object.entries(headers || {}).map(([k, v]) => [k, v == null ? '' : v.toString()])

async function produce() {
  const producer = kafka.producer({ allowAutoTopicCreation: true, idempotent: false })
  await producer.connect()
  const produced = []
  const chunk = 500
  try {
    for (let start = 0; start < cfg.count; start += chunk) {
      const messages = []
      for (let i = start; i < Math.min(start + chunk, cfg.count); i++) {
        messages.push({
          partition: i % cfg.partitions,
          key: `kafkajs-key-${i}`,
          value: `kafkajs-value-${i}-${'j'.repeat(i % 37)}`,
          headers: { seq: String(i), empty: '' },
        })
      }
      const meta = await producer.send({
        topic: cfg.topic,
        acks: -1,
        compression: codecs[cfg.compression],
        messages,
      })
      // One send is one batch per partition; records in a partition get
      // consecutive offsets from its baseOffset, in send order.
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
    }
  } finally {
    await producer.disconnect()
  }
  return produced
}

async function offsets() {
  const admin = kafka.admin()
  await admin.connect()
  try {
    return (await admin.fetchTopicOffsets(cfg.topic)).map(o => ({
      partition: o.partition,
      low: o.low,
      high: o.high,
    }))
  } finally {
    await admin.disconnect()
  }
}

async function fetchAll(highs) {
  const createCluster = Object.getOwnPropertySymbols(kafka).find(
    s => s.description === 'private:Kafka:createCluster'
  )
  if (!createCluster) throw new Error('kafkajs internals changed: no createCluster symbol')
  const cluster = kafka[createCluster]({ allowAutoTopicCreation: false })
  await cluster.connect()
  const fetched = []
  try {
    await cluster.addTargetTopic(cfg.topic)
    await cluster.refreshMetadata()
    for (const pm of cluster.findTopicPartitionMetadata(cfg.topic)) {
      const partition = pm.partitionId
      const high = BigInt(highs[partition])
      const broker = await cluster.findBroker({ nodeId: pm.leader })
      let next = 0n
      while (next < high) {
        if (Date.now() > deadline) throw new Error(`partition ${partition}: fetched up to ${next} of ${high} before the deadline`)
        const resp = await broker.fetch({
          maxWaitTime: 100,
          topics: [{ topic: cfg.topic, partitions: [{ partition, fetchOffset: next.toString(), maxBytes: 1 << 20 }] }],
        })
        const p = resp.responses[0].partitions[0]
        if (p.errorCode !== 0) throw new Error(`fetch error ${p.errorCode} on partition ${partition}`)
        for (const m of p.messages) {
          // A fetch returns whole batches, so it may start before next.
          if (BigInt(m.offset) < next) continue
          fetched.push({
            partition,
            offset: m.offset,
            key: m.key == null ? null : m.key.toString(),
            value: m.value == null ? null : m.value.toString(),
            headers: headerPairs(m.headers),
          })
          next = BigInt(m.offset) + 1n
        }
      }
    }
  } finally {
    await cluster.disconnect()
  }
  return fetched
}

async function main() {
  const produced = await produce()
  const offs = await offsets()
  const highs = {}
  for (const o of offs) highs[o.partition] = o.high
  const fetched = await fetchAll(highs)
  process.stdout.write(JSON.stringify({ version, produced, offsets: offs, fetched }) + '\n')
}

main().catch(err => {
  process.stderr.write(`produce_fetch.js: ${err && err.stack ? err.stack : err}\n`)
  process.exit(1)
})
