"""Fixtures shared by every test folder."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.kafka_fixture import kafka_for_tests


@pytest.fixture(scope="session")
def kafka_bootstrap() -> Iterator[str]:
    """Bootstrap servers of a real Kafka broker for the session (see tests/kafka_fixture.py)."""
    with kafka_for_tests() as bootstrap:
        yield bootstrap
