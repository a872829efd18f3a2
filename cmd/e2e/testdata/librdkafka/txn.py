"""txn.py runs librdkafka transactions through confluent-kafka-python (Debian's
python3-confluent-kafka) for cmd/e2e's TestLibrdkafkaTransactions
(txn_clients_test.go says what the Go side checks).

Usage: python3 txn.py '<json config>'
  config: {broker, topic, inTopic, group, readGroup, txnId, timeoutMs}

The sequence, all with transactional id txnId, writing to topic and
committing offsets of inTopic partition 0 for group through
send_offsets_to_transaction:
  1. p1: commit-0..2 and offset 42, commit_transaction();
  2. p1: abort-0..2 and offset 99, abort_transaction();
  3. p1: zombie1-0 and offset 66; then p2 calls init_transactions() with
     the same id, which fences p1; p1's commit_transaction() must fail;
  4. p2: zombie2-0; then p3 fences p2; p2's next produce (zombie2-late-0)
     and its commit_transaction() must fail;
  5. p3: successor-0..1 and offset 77, commit_transaction().
The group's committed offset is read with Consumer.committed() at each
checkpoint, and a read_committed Consumer (isolation.level=read_committed)
reads topic from the start up to successor-1.

It prints one JSON object on stdout:
  {client, version, readCommitted: [value], offsets: {checkpoint: offset},
   fenced: {op: {ok, code, message}}}
and exits non-zero on any unexpected error. Diagnostics go to stderr.
"""

import json
import sys
import time

import confluent_kafka
from confluent_kafka import Consumer, KafkaError, KafkaException, Producer, TopicPartition

cfg = json.loads(sys.argv[1])
deadline = time.monotonic() + cfg.get("timeoutMs", 60000) / 1000.0
# Bound for one blocking librdkafka call: well inside the Go test's budget.
OP_TIMEOUT = 15.0


def log(msg):
    sys.stderr.write("txn.py: %s\n" % msg)
    sys.stderr.flush()


def new_producer(name):
    return Producer({
        "bootstrap.servers": cfg["broker"],
        "client.id": "strata-e2e-txn-" + name,
        "transactional.id": cfg["txnId"],
        "transaction.timeout.ms": 30000,
        "enable.idempotence": True,
        "acks": "all",
        "linger.ms": 0,
        "error_cb": lambda err: log("%s error_cb: %s" % (name, err)),
    })


def produce(p, prefix, n):
    """Produces n records and waits for their delivery reports; returns the
    first delivery error (None when all were delivered)."""
    errors = []

    def on_delivery(err, msg):
        if err is not None:
            errors.append(err)

    for i in range(n):
        p.produce(cfg["topic"], key="%s-key-%d" % (prefix, i), value="%s-%d" % (prefix, i),
                  partition=0, on_delivery=on_delivery)
    left = p.flush(OP_TIMEOUT)
    if left:
        raise RuntimeError("%s: %d records not delivered within %ss" % (prefix, left, OP_TIMEOUT))
    return errors[0] if errors else None


def produce_ok(p, prefix, n):
    err = produce(p, prefix, n)
    if err is not None:
        raise KafkaException(err)


# The group metadata send_offsets_to_transaction needs comes from a consumer
# of that group; it also reads the group's committed offsets. It is
# read_uncommitted so that committed() does not ask for stable offsets
# (OffsetFetch require_stable), which would wait out an open transaction's
# pending offsets instead of reporting the last committed one.
group_consumer = Consumer({
    "bootstrap.servers": cfg["broker"],
    "group.id": cfg["group"],
    "enable.auto.commit": False,
    "isolation.level": "read_uncommitted",
})


def send_offsets(p, offset):
    p.send_offsets_to_transaction([TopicPartition(cfg["inTopic"], 0, offset)],
                                  group_consumer.consumer_group_metadata(), OP_TIMEOUT)


def committed_offset():
    tps = group_consumer.committed([TopicPartition(cfg["inTopic"], 0)], timeout=OP_TIMEOUT)
    if len(tps) != 1 or tps[0].error is not None:
        raise RuntimeError("committed(): %r" % (tps,))
    return tps[0].offset


def describe(err):
    """The error name as librdkafka gives it, and its description."""
    if isinstance(err, KafkaException) and err.args and isinstance(err.args[0], KafkaError):
        err = err.args[0]
    if isinstance(err, KafkaError):
        return {"ok": False, "code": err.name(), "message": "%s (fatal=%s)" % (err.str(), err.fatal())}
    return {"ok": False, "code": type(err).__name__, "message": str(err)}


def expect_failure(what, op):
    try:
        err = op()
    except Exception as e:  # noqa: BLE001 - any failure is reported to Go
        log("%s failed as expected: %r" % (what, e))
        return describe(e)
    if err is not None:  # a delivery report's error
        log("%s failed as expected (delivery report): %r" % (what, err))
        return describe(err)
    log("%s succeeded, but it must fail" % what)
    return {"ok": True, "code": "", "message": ""}


def read_committed(last):
    c = Consumer({
        "bootstrap.servers": cfg["broker"],
        "group.id": cfg["readGroup"],
        "enable.auto.commit": False,
        "isolation.level": "read_committed",
        "auto.offset.reset": "earliest",
    })
    values = []
    try:
        c.assign([TopicPartition(cfg["topic"], 0, confluent_kafka.OFFSET_BEGINNING)])
        while last not in values:
            if time.monotonic() > deadline:
                raise RuntimeError("read_committed consumer: no %s before the deadline; got %r" % (last, values))
            m = c.poll(0.5)
            if m is None:
                continue
            if m.error() is not None:
                if m.error().code() == KafkaError._PARTITION_EOF:
                    continue
                raise KafkaException(m.error())
            values.append(m.value().decode() if m.value() is not None else "<nil>")
    finally:
        c.close()
    return values


def main():
    offsets, fenced = {}, {}

    p1 = new_producer("p1")
    p1.init_transactions(OP_TIMEOUT)

    p1.begin_transaction()
    produce_ok(p1, "commit", 3)
    send_offsets(p1, 42)
    p1.commit_transaction(OP_TIMEOUT)
    offsets["afterCommit"] = committed_offset()

    p1.begin_transaction()
    produce_ok(p1, "abort", 3)
    send_offsets(p1, 99)
    offsets["beforeAbort"] = committed_offset()
    p1.abort_transaction(OP_TIMEOUT)
    offsets["afterAbort"] = committed_offset()

    # p1 becomes a zombie: p2 initialises the same transactional id while
    # p1's transaction is open.
    p1.begin_transaction()
    produce_ok(p1, "zombie1", 1)
    send_offsets(p1, 66)
    p2 = new_producer("p2")
    p2.init_transactions(OP_TIMEOUT)
    offsets["afterFence"] = committed_offset()
    fenced["commitAfterFence"] = expect_failure("zombie p1 commit", lambda: p1.commit_transaction(OP_TIMEOUT))

    # p2 becomes a zombie in turn, with a produce after p3's init.
    p2.begin_transaction()
    produce_ok(p2, "zombie2", 1)
    p3 = new_producer("p3")
    p3.init_transactions(OP_TIMEOUT)
    fenced["produceAfterFence"] = expect_failure("zombie p2 produce", lambda: produce(p2, "zombie2-late", 1))
    fenced["commitAfterFailedProduce"] = expect_failure("zombie p2 commit", lambda: p2.commit_transaction(OP_TIMEOUT))

    p3.begin_transaction()
    produce_ok(p3, "successor", 2)
    send_offsets(p3, 77)
    p3.commit_transaction(OP_TIMEOUT)
    offsets["final"] = committed_offset()
    group_consumer.close()

    values = read_committed("successor-1")
    out = {
        "client": "librdkafka",
        "version": "confluent-kafka %s, librdkafka %s" % (confluent_kafka.version()[0], confluent_kafka.libversion()[0]),
        "readCommitted": values,
        "offsets": offsets,
        "fenced": fenced,
    }
    sys.stdout.write(json.dumps(out) + "\n")


if __name__ == "__main__":
    main()
