"""A local single-node Apache Kafka (KRaft) for development, tests and demos, from Maven Central."""

from streamer.devkafka.broker import BrokerStatus, LocalKafka
from streamer.devkafka.errors import DevKafkaError
from streamer.devkafka.settings import DEFAULT_KAFKA_VERSION, bootstrap_servers

__all__ = ["DEFAULT_KAFKA_VERSION", "BrokerStatus", "DevKafkaError", "LocalKafka", "bootstrap_servers"]
