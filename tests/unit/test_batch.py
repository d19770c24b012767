import time

from aiokafka import TopicPartition
from aiokafka.structs import ConsumerRecord

from workers.batch import Batch

TP0 = TopicPartition("t", 0)
TP1 = TopicPartition("t", 1)


def _record(tp: TopicPartition, offset: int) -> ConsumerRecord[bytes, bytes]:
    return ConsumerRecord(tp.topic, tp.partition, offset, 0, 0, None, b"v", None, 0, 1, ())


def test_batch_tracks_rows_ranges_and_next_offsets() -> None:
    batch = Batch(max_rows=10, max_seconds=60)
    assert batch.empty and not batch.due()
    batch.add("events", _record(TP0, 5), [1])
    batch.add("events", _record(TP0, 6), [2])
    batch.add(None, _record(TP1, 9), None)  # a dead-lettered record still moves the offset
    batch.add("events", _record(TP1, 10), [3])
    assert batch.rows_by_table() == {"events": [[1], [2], [3]]}
    assert [(b.first, b.last) for b in batch.blocks()] == [(5, 6), (9, 10)]
    assert batch.next_offsets == {TP0: 7, TP1: 11}
    batch.clear()
    assert batch.empty and batch.rows_by_table() == {}


def test_batch_is_due_when_full() -> None:
    batch = Batch(max_rows=2, max_seconds=60)
    batch.add("events", _record(TP0, 0), [1])
    assert not batch.due()
    batch.add("events", _record(TP0, 1), [2])
    assert batch.due()


def test_batch_is_due_when_old() -> None:
    batch = Batch(max_rows=1000, max_seconds=0.05)
    batch.add("events", _record(TP0, 0), [1])
    assert batch.seconds_until_due() <= 0.05
    time.sleep(0.06)
    assert batch.due() and batch.seconds_until_due() == 0.0


def test_block_tokens_depend_on_the_ranges_read() -> None:
    one, two = Batch(100, 60), Batch(100, 60)
    for batch in (one, two):
        batch.add("events", _record(TP1, 3), ["x"])
        batch.add("events", _record(TP0, 1), ["y"])
    assert [b.id.token(1) for b in one.blocks()] == [b.id.token(1) for b in two.blocks()]
    two.add("events", _record(TP0, 2), ["z"])
    assert [b.id.token(1) for b in one.blocks()] != [b.id.token(1) for b in two.blocks()]
