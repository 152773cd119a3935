"""The Kafka broker behind the integration tests: a fresh local broker, or an external one.

- `STREAMER_TEST_BOOTSTRAP=host:port[,...]`: use that broker, start nothing.
- otherwise a local broker on `STREAMER_TEST_KAFKA_PORT` (default 19092) with its data dir under
  `$STREAMER_CACHE_DIR/kafka-data/PORT`, wiped at the start, stopped at the end of the session; it
  also dies with the test process if that is killed.

A broker that cannot start fails the tests that need it (it never skips them).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from streamer.devkafka import DevKafkaError, LocalKafka

EXTERNAL_BOOTSTRAP_ENV = "STREAMER_TEST_BOOTSTRAP"
TEST_PORT_ENV = "STREAMER_TEST_KAFKA_PORT"
DEFAULT_TEST_PORT = 19092


def local_test_port() -> int:
    configured = os.environ.get(TEST_PORT_ENV, str(DEFAULT_TEST_PORT))
    if not configured.isdigit():
        pytest.fail(f"{TEST_PORT_ENV}={configured!r} is not a port number", pytrace=False)
    return int(configured)


def start_fresh_or_fail(broker: LocalKafka) -> str:
    """Start the test broker on wiped data, or fail (never skip) the tests that need it."""
    try:
        # The test port's data dir belongs to the tests: a broker left there by an earlier session
        # (still shutting down after that session was killed, say) is stopped, not reused.
        broker.stop()
        return broker.start(fresh=True, die_with_parent=True)
    except DevKafkaError as error:
        reason = str(error)
    # Outside the except block, so the report shows the reason alone, not a chained traceback.
    pytest.fail(
        f"the local Kafka broker for the integration tests did not start: {reason}\n"
        f"(set {TEST_PORT_ENV}=N to use another port, or {EXTERNAL_BOOTSTRAP_ENV}=host:port to test "
        "against a running broker)",
        pytrace=False,
    )


@contextmanager
def broker_of_its_own(broker: LocalKafka, what: str) -> Iterator[LocalKafka]:
    """`broker` started on wiped data for tests that stop, restart or secure it (the session's broker
    is shared), failing them (never skipping) when it cannot start; stopped at the end."""
    try:
        broker.start(fresh=True, die_with_parent=True)
    except DevKafkaError as error:
        pytest.fail(f"{what} did not start: {error}", pytrace=False)
    try:
        yield broker
    finally:
        broker.stop()


@contextmanager
def kafka_for_tests() -> Iterator[str]:
    """Yield the bootstrap servers of the test broker, with KAFKA_BOOTSTRAP_SERVERS set to them."""
    with pytest.MonkeyPatch.context() as environment:
        if external := os.environ.get(EXTERNAL_BOOTSTRAP_ENV):
            environment.setenv("KAFKA_BOOTSTRAP_SERVERS", external)
            yield external
            return
        broker = LocalKafka(port=local_test_port())
        bootstrap = start_fresh_or_fail(broker)
        try:
            environment.setenv("KAFKA_BOOTSTRAP_SERVERS", bootstrap)
            yield bootstrap
        finally:
            broker.stop()
