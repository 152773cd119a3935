"""TLS and SASL against the real broker: `streamer kafka start --security sasl_ssl|ssl` brokers of this
module's own (on leased ports, stopped at the end), their `client.env` loaded into the environment,
and the worker, `replay`, `simulate --kafka`, `ingest --kafka` and `bench --quick` working through them.
A wrong password, an untrusted CA, a plaintext client against the TLS listener and a TLS client
against a plaintext one each fail within seconds with a message naming the cause; a worker that
cannot log in exits before Faust starts.

Every command runs with a timeout that only stops a hang (a hang fails the test)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest

from streamer.devkafka import DevKafkaError, LocalKafka
from streamer.devkafka.security import read_client_env
from streamer.ports import lease_port
from streamer.sources.asterisk import QueueLogMapper
from tests.integration.fault_support import CONFIG, difference, expected_intervals, settle
from tests.kafka_fixture import broker_of_its_own
from tests.kafka_io import create_topic, read_records
from tests.pipeline_input import build_event_file
from tests.worker_process import WorkerProcess, unique_names

pytestmark = [pytest.mark.integration, pytest.mark.timeout(900)]

STREAMER = [sys.executable, "-m", "streamer.cli"]
QUEUE_LOG = ["1700000001|m1|sales|Local/2001@agents|ADDMEMBER|", "1700000010|c1|sales|NONE|ENTERQUEUE||5550001|1",
             "1700000022|c1|sales|Agent/2001|CONNECT|12|b1|3", "1700000140|c1|sales|Agent/2001|COMPLETECALLER|12|118|1",
             "1700000200|c2|sales|NONE|ENTERQUEUE||5550002|1", "1700000230|c2|sales|NONE|ABANDON|1|1|30"]
COMMAND_SECONDS = 120  # stops a hung command; a refused connection must end long before
FAILURE_SECONDS = 60
CLIENT_KEYS = {"KAFKA_BOOTSTRAP_SERVERS", "KAFKA_SECURITY_PROTOCOL", "KAFKA_SASL_MECHANISM", "KAFKA_SASL_USERNAME",
               "KAFKA_SASL_PASSWORD_FILE", "KAFKA_SSL_CAFILE"}
EVENT = b'{"event_id": "e1", "type": "call.enqueued", "ts": "2026-06-01T10:00:00Z", "call_id": "c1", "queue": "q"}'


@pytest.fixture(scope="module")
def sasl_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalKafka]:
    broker = LocalKafka(port=lease_port(), data_dir=tmp_path_factory.mktemp("sasl") / "kafka", security="sasl_ssl")
    with broker_of_its_own(broker, "the SASL_SSL test broker") as started:
        yield started


@pytest.fixture(scope="module")
def ssl_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[LocalKafka, subprocess.CompletedProcess]]:
    """Started with the command a user runs, `streamer kafka start --security ssl`."""
    data_dir = tmp_path_factory.mktemp("ssl") / "kafka"
    where = ["--port", str(lease_port()), "--data-dir", str(data_dir)]
    started = subprocess.run([*STREAMER, "kafka", "start", "--security", "ssl", *where], capture_output=True,
                             text=True, timeout=300, check=False)
    try:
        if started.returncode != 0:
            pytest.fail(f"`streamer kafka start --security ssl` failed:\n{started.stderr}", pytrace=False)
        yield LocalKafka(port=int(where[1]), data_dir=data_dir), started
    finally:
        subprocess.run([*STREAMER, "kafka", "stop", *where], capture_output=True, timeout=120, check=False)


def client_env(broker: LocalKafka) -> dict[str, str]:
    return read_client_env(broker.client_env_file)


def worker_env(tmp_path: Path, broker: LocalKafka) -> dict[str, str]:
    """A worker of its own (app id, topics) on this broker, with its client.env settings."""
    config = tmp_path / "streamer.toml"
    config.write_text(CONFIG)
    return {**unique_names("s"), "STREAMER_PARTITIONS": "4", "STREAMER_CONFIG": str(config), **client_env(broker)}


def streamer(args: list[str], env: dict[str, str],
             timeout: float = COMMAND_SECONDS) -> subprocess.CompletedProcess[str]:
    """A `streamer` command with exactly these KAFKA_* settings (none inherited from this shell)."""
    clean = {key: value for key, value in os.environ.items() if not key.startswith("KAFKA_")}
    return subprocess.run([*STREAMER, *args], env={**clean, **env}, capture_output=True, text=True, timeout=timeout,
                          check=False)


def fresh_topic(broker: LocalKafka, monkeypatch: pytest.MonkeyPatch, partitions: int = 3) -> str:
    for key, value in client_env(broker).items():
        monkeypatch.setenv(key, value)
    return create_topic(broker.bootstrap, f"sec-{uuid.uuid4().hex[:10]}", partitions)


def sent_count(stderr: str) -> int:
    """The event count of `streamer simulate`'s last line ("simulate: 1,234 events, ...")."""
    return int(stderr.strip().splitlines()[-1].split()[1].replace(",", ""))


# --- the settings a client gets ---------------------------------------------------------------


def test_kafka_start_writes_the_client_settings_and_prints_the_address_last(ssl_broker) -> None:
    broker, started = ssl_broker
    assert started.stdout.strip().splitlines()[-1] == broker.bootstrap
    assert f"client settings: {broker.client_env_file}" in started.stderr
    assert client_env(broker) == {"KAFKA_BOOTSTRAP_SERVERS": broker.bootstrap, "KAFKA_SECURITY_PROTOCOL": "SSL",
                                  "KAFKA_SSL_CAFILE": str(broker.security.ca_file)}
    status = subprocess.run([*STREAMER, "kafka", "status", "--port", str(broker.port), "--data-dir",
                             str(broker.data_dir)], capture_output=True, text=True, timeout=60, check=False)
    assert status.returncode == 0 and "security: ssl" in status.stdout


def test_the_sasl_broker_gets_a_scram_user_whose_password_only_its_owner_reads(sasl_broker: LocalKafka) -> None:
    settings = client_env(sasl_broker)
    assert set(settings) == CLIENT_KEYS
    assert settings["KAFKA_SECURITY_PROTOCOL"] == "SASL_SSL" and settings["KAFKA_SASL_MECHANISM"] == "SCRAM-SHA-512"
    password = Path(settings["KAFKA_SASL_PASSWORD_FILE"])
    assert password.stat().st_mode & 0o077 == 0 and sasl_broker.properties_file.stat().st_mode & 0o077 == 0
    assert password.read_text().strip() not in sasl_broker.client_env_file.read_text()


def test_another_security_mode_on_a_data_dir_is_refused(sasl_broker: LocalKafka) -> None:
    other = LocalKafka(port=sasl_broker.port, data_dir=sasl_broker.data_dir, security="plaintext")
    with pytest.raises(DevKafkaError, match="was made with --security sasl_ssl, not plaintext"):
        other.start()


# --- the commands through TLS + SCRAM, and through TLS alone -----------------------------------


@pytest.mark.parametrize("mode", ["sasl_ssl", "ssl"])
def test_the_worker_counts_what_replay_sends_like_the_offline_report(mode: str, request: pytest.FixtureRequest,
                                                                     tmp_path: Path) -> None:
    broker = request.getfixturevalue("sasl_broker") if mode == "sasl_ssl" else request.getfixturevalue("ssl_broker")[0]
    env = worker_env(tmp_path, broker)
    events = build_event_file(tmp_path / "events.jsonl", hours=1.0, seed=5)
    want = expected_intervals(events, env)

    worker = WorkerProcess(env, tmp_path / "data", tmp_path / "worker.log").start()
    try:
        replayed = streamer(["replay", str(events)], env)  # no --topic: $STREAMER_TOPIC_EVENTS, as the worker
        assert replayed.returncode == 0, replayed.stderr
        with pytest.MonkeyPatch.context() as patch:
            for key, value in client_env(broker).items():
                patch.setenv(key, value)
            got = settle(broker.bootstrap, env["STREAMER_TOPIC_INTERVALS"], want)
        assert got == want, difference(got, want) + "\n" + worker.log_tail()
    finally:
        worker.stop()


@pytest.mark.parametrize("mode", ["sasl_ssl", "ssl"])
def test_simulate_and_ingest_send_through_the_secured_listener(mode: str, request: pytest.FixtureRequest,
                                                               monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    broker = request.getfixturevalue("sasl_broker") if mode == "sasl_ssl" else request.getfixturevalue("ssl_broker")[0]
    simulated, ingested = fresh_topic(broker, monkeypatch), fresh_topic(broker, monkeypatch)
    env = client_env(broker)

    done = streamer(["simulate", "--hours", "0.25", "--speed", "0", "--start", "2026-06-01T08:00:00Z", "--topic",
                     simulated], env)
    assert done.returncode == 0, done.stderr
    assert len(read_records(broker.bootstrap, simulated)) == sent_count(done.stderr) > 0

    log = tmp_path / "queue_log"
    log.write_text("\n".join(QUEUE_LOG) + "\n")
    done = streamer(["ingest", "asterisk", str(log), "--kafka"], {**env, "STREAMER_TOPIC_EVENTS": ingested})
    assert done.returncode == 0, done.stderr
    sent = [orjson.loads(r.value) for r in read_records(broker.bootstrap, ingested)]
    assert sorted(e["event_id"] for e in sent) == sorted(e["event_id"] for e in QueueLogMapper().map_lines(QUEUE_LOG))


@pytest.mark.timeout(900)
def test_the_quick_bench_runs_through_tls_and_scram(sasl_broker: LocalKafka, tmp_path: Path) -> None:
    done = streamer(["bench", "--quick", "--workdir", str(tmp_path / "bench")], client_env(sasl_broker), timeout=840)
    assert done.returncode == 0, done.stderr[-4000:]
    assert f"using the broker at {sasl_broker.bootstrap} (KAFKA_BOOTSTRAP_SERVERS)" in done.stderr
    summary = json.loads(done.stdout.strip().splitlines()[-1])
    assert summary["events_per_second"] > 0 and summary["latency_probes"] > 0


# --- refusals: fast, and naming the cause -------------------------------------------------------


def refused_replay(env: dict[str, str], tmp_path: Path) -> str:
    """stderr of a `streamer replay` that must fail, and fail within FAILURE_SECONDS (not hang)."""
    events = tmp_path / "one.jsonl"
    events.write_bytes(EVENT + b"\n")
    done = streamer(["replay", str(events)], env, timeout=FAILURE_SECONDS)
    assert done.returncode == 2, done.stderr
    return done.stderr


def test_a_wrong_password_is_named(sasl_broker: LocalKafka, tmp_path: Path) -> None:
    wrong = tmp_path / "wrong-password"
    wrong.write_text("not-the-password\n")
    message = refused_replay({**client_env(sasl_broker), "KAFKA_SASL_PASSWORD_FILE": str(wrong)}, tmp_path)
    assert "refused the login of KAFKA_SASL_USERNAME=streamer (SCRAM-SHA-512)" in message
    assert "invalid credentials" in message and "not-the-password" not in message


def test_an_untrusted_ca_is_named(sasl_broker: LocalKafka, ssl_broker, tmp_path: Path) -> None:
    other_ca = ssl_broker[0].security.ca_file  # a CA, but not the one that signed this broker's certificate
    message = refused_replay({**client_env(sasl_broker), "KAFKA_SSL_CAFILE": str(other_ca)}, tmp_path)
    assert f"is not trusted (self-signed certificate in certificate chain): KAFKA_SSL_CAFILE={other_ca}" in message


def test_a_plaintext_client_against_the_tls_listener_is_told_it_speaks_tls(ssl_broker, tmp_path: Path) -> None:
    message = refused_replay({"KAFKA_BOOTSTRAP_SERVERS": ssl_broker[0].bootstrap}, tmp_path)
    assert "speaks TLS, but KAFKA_SECURITY_PROTOCOL=PLAINTEXT" in message


def test_a_tls_client_against_a_plaintext_listener_is_told_it_does_not(kafka_bootstrap: str, ssl_broker,
                                                                       tmp_path: Path) -> None:
    env = {"KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap, "KAFKA_SECURITY_PROTOCOL": "SSL",
           "KAFKA_SSL_CAFILE": str(ssl_broker[0].security.ca_file)}
    message = refused_replay(env, tmp_path)
    assert f"the listener at {kafka_bootstrap} does not speak TLS, but KAFKA_SECURITY_PROTOCOL=SSL" in message


def test_a_tls_client_without_sasl_is_told_the_listener_wants_sasl(sasl_broker: LocalKafka, tmp_path: Path) -> None:
    settings = client_env(sasl_broker)
    env = {"KAFKA_BOOTSTRAP_SERVERS": sasl_broker.bootstrap, "KAFKA_SECURITY_PROTOCOL": "SSL",
           "KAFKA_SSL_CAFILE": settings["KAFKA_SSL_CAFILE"]}
    message = refused_replay(env, tmp_path)
    assert "its listener probably requires SASL" in message


def test_a_worker_that_cannot_log_in_exits_before_faust_starts(sasl_broker: LocalKafka, tmp_path: Path) -> None:
    env = worker_env(tmp_path, sasl_broker)
    del env["KAFKA_SASL_PASSWORD_FILE"]
    env["KAFKA_SASL_PASSWORD"] = "not-the-password"
    done = streamer(["worker", "--web-port", str(lease_port()), "--datadir", str(tmp_path / "data")], env,
                    timeout=FAILURE_SECONDS)
    assert done.returncode == 2
    assert "streamer worker: not starting: Kafka at" in done.stderr and "refused the login" in done.stderr
    assert "[^Worker]" not in done.stdout + done.stderr, "Faust must not have started"
