"""The changelog topics the worker creates before Faust starts: one per table, named, partitioned and
configured as Faust itself would create them."""

from __future__ import annotations

from datetime import timedelta
from types import SimpleNamespace

from streamer.app.main import create_app
from streamer.app.settings import load_worker_settings
from streamer.app.topics import changelog_topics


def test_every_table_gets_its_compacted_changelog_partitioned_like_the_table() -> None:
    settings = load_worker_settings({"STREAMER_STORE": "memory://", "STREAMER_APP_ID": "cc", "STREAMER_PARTITIONS": "6",
                                     "STREAMER_OUTCOME_PARTITIONS": "3"})
    app = create_app(settings)
    topics = changelog_topics(app.tables.values(), app.conf.topic_partitions, app.conf.topic_replication_factor)
    assert {t.name for t in topics} == {f"cc-{name}-changelog" for name in app.tables}
    for topic in topics:
        table = app.tables[topic.name.removeprefix("cc-").removesuffix("-changelog")]
        assert topic.num_partitions == table.partitions, topic.name
        assert topic.replication_factor == 1
        assert topic.topic_configs == {"cleanup.policy": "compact"}
    assert {t.num_partitions for t in topics} == {6, 3}  # calls by call id; queue tables like call-outcomes


def test_retention_deletion_and_extra_config_follow_fausts_rules() -> None:
    topic = SimpleNamespace(topics=("w-changelog",), partitions=None, replicas=None, compacting=True, deleting=True,
                            retention=timedelta(hours=1), config={"min.compaction.lag.ms": 60000})
    (made,) = changelog_topics([SimpleNamespace(changelog_topic=topic)], default_partitions=8, default_replicas=3)
    assert (made.name, made.num_partitions, made.replication_factor) == ("w-changelog", 8, 3)
    assert made.topic_configs == {"cleanup.policy": "compact,delete", "retention.ms": "3600000",
                                  "min.compaction.lag.ms": "60000"}
