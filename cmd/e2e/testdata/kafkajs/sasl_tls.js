// sasl_tls.js: kafkajs over TLS with SASL SCRAM. Produces `count` records to
// `topic`, then consumes them back with a consumer group, and prints JSON:
// {version, produced, consumed, error}. A login failure is reported in
// error (and exit code 0) so the Go test can assert on it.
const fs = require("fs");
const { Kafka, logLevel } = require("kafkajs");
const cfg = JSON.parse(process.argv[2]);

async function main() {
  const out = { version: require("kafkajs/package.json").version, produced: 0, consumed: [], error: null };
  const kafka = new Kafka({
    clientId: "strata-e2e-kafkajs-sasl",
    brokers: [cfg.broker],
    ssl: { ca: [fs.readFileSync(cfg.caFile, "utf8")] },
    sasl: { mechanism: cfg.mechanism, username: cfg.username, password: cfg.password },
    logLevel: logLevel.NOTHING,
    retry: { retries: cfg.retries ?? 3 },
    connectionTimeout: 10000,
    authenticationTimeout: 10000,
  });
  const producer = kafka.producer();
  try {
    await producer.connect();
    const messages = [];
    for (let i = 0; i < cfg.count; i++) messages.push({ key: "k" + i, value: "kafkajs-" + i });
    await producer.send({ topic: cfg.topic, acks: -1, messages });
    out.produced = messages.length;
    await producer.disconnect();
  } catch (e) {
    out.error = e.type || e.name || String(e);
    out.message = String(e.message || e);
    process.stdout.write(JSON.stringify(out));
    return;
  }
  const consumer = kafka.consumer({ groupId: cfg.group });
  await consumer.connect();
  await consumer.subscribe({ topic: cfg.topic, fromBeginning: true });
  await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error("timed out consuming")), cfg.timeoutMs);
    consumer.run({
      eachMessage: async ({ message }) => {
        out.consumed.push(message.value.toString());
        if (out.consumed.length >= cfg.count) { clearTimeout(timer); resolve(); }
      },
    });
  });
  await consumer.disconnect();
  process.stdout.write(JSON.stringify(out));
}

main().catch((e) => { console.error(e); process.exit(1); });
