"""What the worker command does on the broker before Faust starts: the changelog topics exist, with
the tables' partition counts, before the consumer first asks for metadata."""

from __future__ import annotations

import pytest
from aiokafka.admin import AIOKafkaAdminClient

from streamer.app.main import create_app
from streamer.app.settings import load_worker_settings
from streamer.app.topics import ensure_changelog_topics
from tests.worker_process import unique_names

pytestmark = pytest.mark.integration


async def partition_counts(bootstrap: str, names: list[str]) -> dict[str, int]:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        return {d["topic"]: len(d["partitions"]) for d in await admin.describe_topics(names)}
    finally:
        await admin.close()


async def test_changelog_topics_are_created_once_with_the_tables_partitions(kafka_bootstrap: str) -> None:
    settings = load_worker_settings({**unique_names("c"), "KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap,
                                     "STREAMER_STORE": "memory://", "STREAMER_PARTITIONS": "4",
                                     "STREAMER_OUTCOME_PARTITIONS": "2"})
    app = create_app(settings)
    tables = list(app.tables.values())

    created = await ensure_changelog_topics(settings, tables, app.conf.topic_partitions,
                                            app.conf.topic_replication_factor)

    assert sorted(created) == sorted(table.changelog_topic.get_topic_name() for table in tables)
    counts = await partition_counts(kafka_bootstrap, created)
    assert counts == {table.changelog_topic.get_topic_name(): table.partitions for table in tables}
    assert await ensure_changelog_topics(settings, tables, app.conf.topic_partitions,
                                         app.conf.topic_replication_factor) == []
