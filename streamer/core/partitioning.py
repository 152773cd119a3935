"""Which partition of a topic a key lands in: Kafka's default partitioner (murmur2 of the key bytes).

The live pipeline judges lateness, expiry and the forgetting of finished calls by the stream time of
each partition of `call-events`, so the offline report can only give the worker's numbers on every
input when it splits the events the same way. Kafka's Java client, librdkafka's `murmur2_random` and
aiokafka all place a keyed record with this hash; it is written here so the core needs no Kafka client.
"""

from __future__ import annotations

_SEED = 0x9747B28C
_M = 0x5BD1E995
_MASK = 0xFFFFFFFF


def murmur2(data: bytes) -> int:
    """MurmurHash2 as Kafka computes it (org.apache.kafka.common.utils.Utils.murmur2), as the unsigned
    32-bit value of the Java client's int (as aiokafka returns it)."""
    length = len(data)
    h = (_SEED ^ length) & _MASK
    whole = length - length % 4
    for i in range(0, whole, 4):
        k = int.from_bytes(data[i:i + 4], "little")
        k = (k * _M) & _MASK
        k ^= k >> 24
        k = (k * _M) & _MASK
        h = ((h * _M) & _MASK) ^ k
    rest = length % 4
    if rest == 3:
        h ^= data[whole + 2] << 16
    if rest >= 2:
        h ^= data[whole + 1] << 8
    if rest >= 1:
        h ^= data[whole]
        h = (h * _M) & _MASK
    h ^= h >> 13
    h = (h * _M) & _MASK
    h ^= h >> 15
    return h


def partition_of(key: str | bytes, partitions: int) -> int:
    """The partition of `partitions` that Kafka's default partitioner gives a record keyed `key`."""
    if partitions == 1:
        return 0
    return (murmur2(key.encode() if isinstance(key, str) else key) & 0x7FFFFFFF) % partitions
