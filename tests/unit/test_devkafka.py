"""The local broker without a broker: configuration, artifacts, refusals, pid checks, the CLI shell.

Where a running broker must be recognised, a stand-in process carries exactly the command line a
broker started from that data dir would have (argv[0] `java`, `kafka.Kafka`, the properties file),
since recognising that command line is what is under test.
"""

from __future__ import annotations

import re
import socket
import stat
import subprocess
import sys
import time
import xml.etree.ElementTree as ElementTree
from collections.abc import Iterator
from pathlib import Path

import pytest

from streamer.cli import main as streamer_main
from streamer.devkafka import DevKafkaError, LocalKafka, maven, process, settings
from streamer.devkafka.broker import new_cluster_id
from streamer.devkafka.errors import text_tail
from streamer.devkafka.java import find_java, parse_java_major
from streamer.devkafka.probe import broker_answers
from streamer.devkafka.properties import BrokerConfig, logging_config, server_properties
from streamer.ports import lease_port

KAFKA_3_9_JARS = ["kafka_2.13-3.9.1.jar", "kafka-clients-3.9.1.jar", "slf4j-api-1.7.36.jar", "zstd-jni-1.5.6-4.jar"]
KAFKA_4_1_JARS = [
    "kafka_2.13-4.1.1.jar", "log4j-api-2.24.3.jar", "log4j-core-2.24.3.jar", "slf4j-api-1.7.36.jar",
]


def parse_properties(text: str) -> dict[str, str]:
    pairs = (line.split("=", 1) for line in text.splitlines() if line and not line.startswith("#"))
    return {key: value for key, value in pairs}


@pytest.fixture
def no_tools_on_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A PATH with neither java nor mvn, and no JAVA_HOME."""
    empty_bin = tmp_path / "empty-bin"
    empty_bin.mkdir()
    monkeypatch.setenv("PATH", str(empty_bin))
    monkeypatch.delenv("JAVA_HOME", raising=False)


@pytest.fixture
def isolated_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    cache = tmp_path / "cache"
    monkeypatch.setenv("STREAMER_CACHE_DIR", str(cache))
    return cache


@pytest.fixture
def free_port() -> int:
    return lease_port()


def start_stand_in(argv: list[str]) -> subprocess.Popen[bytes]:
    """A sleeping Python process whose command line is `argv` (argv[0] included).

    Returns once the kernel shows that command line: right after exec, /proc/PID/cmdline can still
    read empty for an instant.
    """
    stand_in = subprocess.Popen(
        [argv[0], "-c", "import time; time.sleep(120)", *argv[1:]], executable=sys.executable
    )
    for _ in range(1000):
        if process.process_cmdline(stand_in.pid):
            return stand_in
        time.sleep(0.01)
    stand_in.kill()
    stand_in.wait()
    pytest.fail("the stand-in process never showed its command line in /proc")


@pytest.fixture
def running_stand_in(tmp_path: Path, free_port: int) -> Iterator[tuple[LocalKafka, subprocess.Popen[bytes]]]:
    broker = LocalKafka(port=free_port, data_dir=tmp_path / "data", version="3.9.1")
    broker.data_dir.mkdir()
    stand_in = start_stand_in(["java", "-Xmx1g", "-cp", "libs/*", "kafka.Kafka", str(broker.properties_file)])
    broker.pid_file.write_text(f"{stand_in.pid}\n")
    yield broker, stand_in
    stand_in.kill()
    stand_in.wait()


# --- server.properties and logging ---------------------------------------------------------------


def test_server_properties_make_one_loopback_node_with_single_replica_internals(tmp_path: Path) -> None:
    config = BrokerConfig(port=19192, controller_port=40123, log_dir=tmp_path / "logs", kafka_major=3)
    properties = parse_properties(server_properties(config))
    assert properties["process.roles"] == "broker,controller"
    assert properties["listeners"] == "PLAINTEXT://127.0.0.1:19192,CONTROLLER://127.0.0.1:40123"
    assert properties["advertised.listeners"] == "PLAINTEXT://127.0.0.1:19192"
    assert properties["controller.quorum.voters"] == f"{properties['node.id']}@127.0.0.1:40123"
    assert properties["controller.listener.names"] == "CONTROLLER"
    assert properties["log.dirs"] == str(tmp_path / "logs")
    for key in (
        "offsets.topic.replication.factor", "transaction.state.log.replication.factor",
        "transaction.state.log.min.isr", "min.insync.replicas", "default.replication.factor", "num.partitions",
    ):
        assert properties[key] == "1", key
    assert properties["group.initial.rebalance.delay.ms"] == "0"
    assert properties["auto.create.topics.enable"] == "true"
    assert properties["message.max.bytes"] == "1048588"
    assert not any(key.startswith("share.") for key in properties)


def test_kafka_4_properties_also_give_the_share_state_topic_one_replica(tmp_path: Path) -> None:
    config = BrokerConfig(port=19192, controller_port=40123, log_dir=tmp_path, kafka_major=4)
    properties = parse_properties(server_properties(config))
    assert properties["share.coordinator.state.topic.replication.factor"] == "1"
    assert properties["share.coordinator.state.topic.min.isr"] == "1"


def test_logging_config_follows_the_logging_api_of_the_release(tmp_path: Path) -> None:
    log4j1 = logging_config(log4j2=False, folder=tmp_path)
    assert log4j1.path == tmp_path / "log4j.properties"
    assert log4j1.jvm_option == f"-Dlog4j.configuration=file:{tmp_path / 'log4j.properties'}"
    assert "org.apache.log4j.ConsoleAppender" in log4j1.text
    assert "${streamer.log.level}" in log4j1.text
    log4j2 = logging_config(log4j2=True, folder=tmp_path)
    assert log4j2.path == tmp_path / "log4j2.properties"
    assert log4j2.jvm_option == f"-Dlog4j2.configurationFile={tmp_path / 'log4j2.properties'}"
    assert "${sys:streamer.log.level:-INFO}" in log4j2.text


def test_cluster_ids_have_kafkas_format_and_never_look_like_an_option() -> None:
    # 1 in 64 random ids starts with "-", so 2000 draws exercise the rejection many times.
    ids = [new_cluster_id() for _ in range(2000)]
    assert all(re.fullmatch(r"[A-Za-z0-9_][A-Za-z0-9_\-]{21}", cluster_id) for cluster_id in ids)
    assert len(set(ids)) == len(ids)


# --- settings ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("bootstrap", "port"),
    [("127.0.0.1:9092", 9092), ("localhost:19192,other:9092", 19192), ("kafka://127.0.0.1:9093", 9093)],
)
def test_local_broker_port_comes_from_the_first_loopback_server(bootstrap: str, port: int) -> None:
    assert settings.local_broker_port(bootstrap) == port


def test_a_remote_bootstrap_is_refused_by_the_local_broker_commands() -> None:
    with pytest.raises(DevKafkaError, match=r"kafka\.prod.*only a local development broker"):
        settings.local_broker_port("kafka.prod:9092")


def test_a_bootstrap_without_port_is_refused() -> None:
    with pytest.raises(DevKafkaError, match="expected HOST:PORT"):
        settings.local_broker_port("127.0.0.1")


def test_cache_and_data_dirs_follow_streamer_cache_dir(isolated_cache: Path) -> None:
    assert settings.libs_dir("3.9.1") == isolated_cache / "kafka" / "3.9.1" / "libs"
    assert settings.default_data_dir(19192) == isolated_cache / "kafka-data" / "19192"
    assert LocalKafka(port=19192).data_dir == isolated_cache / "kafka-data" / "19192"


def test_kafka_version_comes_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("STREAMER_KAFKA_VERSION", raising=False)
    assert settings.kafka_version() == settings.DEFAULT_KAFKA_VERSION == "3.9.1"
    monkeypatch.setenv("STREAMER_KAFKA_VERSION", "4.1.1")
    assert LocalKafka(port=19192).version == "4.1.1"


@pytest.mark.parametrize("version", ["2.8.2", "latest", "4.1"])
def test_releases_without_kraft_or_malformed_versions_are_refused(version: str) -> None:
    with pytest.raises(DevKafkaError, match="not supported"):
        settings.kafka_major(version)


# --- Maven artifacts -----------------------------------------------------------------------------


def test_kafka_3_gets_the_reload4j_binding_of_its_slf4j_release() -> None:
    assert maven.logging_binding(KAFKA_3_9_JARS) == [
        "ch.qos.reload4j:reload4j:1.2.25",
        "org.slf4j:slf4j-reload4j:1.7.36",
    ]
    assert not maven.uses_log4j2(KAFKA_3_9_JARS)


def test_kafka_4_gets_the_log4j2_bridge_of_its_log4j_release() -> None:
    assert maven.logging_binding(KAFKA_4_1_JARS) == ["org.apache.logging.log4j:log4j-slf4j-impl:2.24.3"]
    assert maven.uses_log4j2(KAFKA_4_1_JARS)
    slf4j2 = ["log4j-core-2.25.5.jar", "slf4j-api-2.0.17.jar"]
    assert maven.logging_binding(slf4j2) == ["org.apache.logging.log4j:log4j-slf4j2-impl:2.25.5"]


def test_jars_without_slf4j_cannot_get_a_binding() -> None:
    with pytest.raises(DevKafkaError, match="no slf4j-api"):
        maven.logging_binding(["kafka_2.13-3.9.1.jar"])


def test_the_generated_pom_lists_exactly_the_requested_artifacts() -> None:
    pom = ElementTree.fromstring(maven.pom_xml(["org.apache.kafka:kafka_2.13:3.9.1", "org.slf4j:slf4j-api:1.7.36"]))
    namespace = {"m": "http://maven.apache.org/POM/4.0.0"}
    listed = [
        ":".join(dependency.find(f"m:{field}", namespace).text for field in ("groupId", "artifactId", "version"))
        for dependency in pom.iterfind("m:dependencies/m:dependency", namespace)
    ]
    assert listed == ["org.apache.kafka:kafka_2.13:3.9.1", "org.slf4j:slf4j-api:1.7.36"]


def write_resolved_libs(libs: Path, jar_names: list[str]) -> None:
    libs.mkdir(parents=True)
    for name in jar_names:
        (libs / name).write_bytes(b"")
    (libs / maven.MANIFEST_NAME).write_text("\n".join(jar_names) + "\n")


def test_resolved_jars_are_reused_without_maven(tmp_path: Path, no_tools_on_path: None) -> None:
    libs = tmp_path / "libs"
    write_resolved_libs(libs, KAFKA_3_9_JARS)
    assert maven.resolve_kafka_libs("3.9.1", libs) == libs


def test_a_jar_missing_from_the_manifest_means_not_resolved(tmp_path: Path) -> None:
    libs = tmp_path / "libs"
    write_resolved_libs(libs, KAFKA_3_9_JARS)
    (libs / KAFKA_3_9_JARS[0]).unlink()
    assert not maven.is_resolved(libs)
    assert not maven.is_resolved(tmp_path / "nowhere")


def test_missing_maven_is_named(tmp_path: Path, no_tools_on_path: None) -> None:
    with pytest.raises(DevKafkaError, match=r"Maven \(`mvn`\) is not on PATH.*apt-get install maven"):
        maven.resolve_kafka_libs("3.9.1", tmp_path / "kafka" / "3.9.1" / "libs")
    assert not (tmp_path / "kafka" / "3.9.1").exists()


def test_a_failing_maven_shows_the_end_of_its_output(
    tmp_path: Path, no_tools_on_path: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    # An `mvn` that fails the way Maven does when an artifact is missing from Maven Central.
    bin_dir = tmp_path / "maven-bin"
    bin_dir.mkdir()
    failing_mvn = bin_dir / "mvn"
    failing_mvn.write_text(
        "#!/bin/sh\necho '[INFO] Scanning for projects...'\n"
        "echo '[ERROR] Could not find artifact org.apache.kafka:kafka_2.13:jar:3.9.99 in central'\nexit 1\n"
    )
    failing_mvn.chmod(failing_mvn.stat().st_mode | stat.S_IXUSR)
    monkeypatch.setenv("PATH", str(bin_dir))
    libs = tmp_path / "kafka" / "3.9.99" / "libs"
    with pytest.raises(DevKafkaError) as raised:
        maven.resolve_kafka_libs("3.9.99", libs)
    message = str(raised.value)
    assert "Maven failed (exit 1)" in message
    assert "Could not find artifact org.apache.kafka:kafka_2.13:jar:3.9.99" in message
    assert not libs.exists()


def test_tool_output_tails_drop_colour_codes_and_bare_maven_markers() -> None:
    output = "one\n\x1b[1;31m[ERROR]\x1b[m\n[ERROR] two\n\nthree\n"
    assert text_tail(output, lines=2) == "    [ERROR] two\n    three"


# --- Java ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("output", "major"),
    [
        ('openjdk version "17.0.15" 2025-04-15\nOpenJDK Runtime Environment', 17),
        ('java version "1.8.0_392"', 8),
        ('openjdk version "21" 2023-09-19', 21),
        ("no version here", None),
    ],
)
def test_java_major_is_read_from_java_version_output(output: str, major: int | None) -> None:
    assert parse_java_major(output) == major


def test_missing_java_is_named(no_tools_on_path: None) -> None:
    with pytest.raises(DevKafkaError, match=r"Java is not installed.*JAVA_HOME"):
        find_java()


def test_start_without_java_stops_with_a_clear_message(
    tmp_path: Path, free_port: int, no_tools_on_path: None
) -> None:
    broker = LocalKafka(port=free_port, data_dir=tmp_path / "data", version="3.9.1")
    with pytest.raises(DevKafkaError, match="Java is not installed"):
        broker.start()
    assert not broker.pid_file.exists()


# --- refusals before anything starts -------------------------------------------------------------


def test_start_refuses_a_port_in_use_and_names_it(tmp_path: Path, free_port: int) -> None:
    with socket.socket() as occupant:
        occupant.bind((settings.LOOPBACK_HOST, free_port))
        occupant.listen()
        assert process.port_in_use(settings.LOOPBACK_HOST, free_port)
        broker = LocalKafka(port=free_port, data_dir=tmp_path / "data", version="3.9.1")
        with pytest.raises(DevKafkaError, match=f"port {free_port} on 127.0.0.1 is already in use"):
            broker.start()
    assert not process.port_in_use(settings.LOOPBACK_HOST, free_port)
    assert not broker.data_dir.exists()


def test_a_data_dir_of_another_kafka_release_is_refused_before_any_work(
    tmp_path: Path, free_port: int, no_tools_on_path: None
) -> None:
    broker = LocalKafka(port=free_port, data_dir=tmp_path / "data", version="3.9.1")
    broker.data_dir.mkdir()
    broker.version_file.write_text("4.1.1\n")
    with pytest.raises(DevKafkaError, match=r"made by Kafka 4\.1\.1, not 3\.9\.1.*--fresh"):
        broker.start()


def test_an_open_port_that_does_not_speak_kafka_is_not_a_serving_broker(free_port: int) -> None:
    with socket.socket() as silent:
        silent.bind((settings.LOOPBACK_HOST, free_port))
        silent.listen()
        assert process.accepts_connections(settings.LOOPBACK_HOST, free_port)
        assert not broker_answers(f"127.0.0.1:{free_port}", timeout=1.0)


# --- pid verification and the second start -------------------------------------------------------


def test_a_process_running_kafka_on_our_properties_is_our_broker(
    running_stand_in: tuple[LocalKafka, subprocess.Popen[bytes]],
) -> None:
    broker, stand_in = running_stand_in
    assert process.is_broker_process(stand_in.pid, broker.properties_file)
    assert not process.is_broker_process(stand_in.pid, broker.data_dir / "other.properties")
    status = broker.status()
    assert (status.running, status.pid, status.bootstrap) == (True, stand_in.pid, broker.bootstrap)


def test_a_pid_file_naming_another_program_is_stale(tmp_path: Path, free_port: int) -> None:
    broker = LocalKafka(port=free_port, data_dir=tmp_path / "data", version="3.9.1")
    broker.data_dir.mkdir()
    stranger = start_stand_in(["python3", "kafka.Kafka", str(broker.properties_file)])
    try:
        broker.pid_file.write_text(f"{stranger.pid}\n")
        assert not broker.is_running()
        assert broker.stop() is False
        assert stranger.poll() is None, "stop must never signal a process that is not our broker"
        assert not broker.pid_file.exists()
    finally:
        stranger.kill()
        stranger.wait()


def test_a_pid_file_naming_a_dead_process_is_stale(tmp_path: Path, free_port: int) -> None:
    broker = LocalKafka(port=free_port, data_dir=tmp_path / "data", version="3.9.1")
    broker.data_dir.mkdir()
    finished = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    broker.pid_file.write_text(finished.stdout)
    assert broker.status().running is False


def test_a_zombie_counts_as_exited_and_is_reaped_by_its_parent() -> None:
    finished = subprocess.Popen([sys.executable, "-c", "pass"])
    for _ in range(1000):
        if Path(f"/proc/{finished.pid}/stat").read_text().rpartition(")")[2].split()[0] == "Z":
            break
        time.sleep(0.01)
    assert not process.is_alive(finished.pid)
    assert process.has_exited(finished.pid)
    assert not Path(f"/proc/{finished.pid}").exists()
    finished.wait()


def test_a_second_start_returns_the_running_broker_and_changes_nothing(
    running_stand_in: tuple[LocalKafka, subprocess.Popen[bytes]], no_tools_on_path: None
) -> None:
    broker, stand_in = running_stand_in
    # No java and no mvn on PATH: a second start must not need them, since it launches nothing.
    assert broker.start() == broker.bootstrap
    assert broker.pid_file.read_text().strip() == str(stand_in.pid)
    assert stand_in.poll() is None
    with pytest.raises(DevKafkaError, match="stop it first"):
        broker.start(fresh=True)
    assert broker.data_dir.is_dir() and broker.pid_file.exists()


def test_stop_terminates_our_broker_and_removes_the_pid_file(
    running_stand_in: tuple[LocalKafka, subprocess.Popen[bytes]],
) -> None:
    broker, stand_in = running_stand_in
    assert broker.stop() is True
    assert not process.is_alive(stand_in.pid)
    assert not broker.pid_file.exists()
    assert broker.stop() is False


# --- the `streamer kafka` shell ------------------------------------------------------------------


def test_cli_status_of_a_stopped_broker_exits_3(
    tmp_path: Path, free_port: int, capsys: pytest.CaptureFixture[str]
) -> None:
    code = streamer_main(["kafka", "status", "--port", str(free_port), "--data-dir", str(tmp_path)])
    out = capsys.readouterr().out
    assert code == 3
    assert "status: stopped" in out
    assert f"bootstrap: 127.0.0.1:{free_port}" in out


def test_cli_second_start_says_so_and_prints_the_address_last(
    running_stand_in: tuple[LocalKafka, subprocess.Popen[bytes]], capsys: pytest.CaptureFixture[str]
) -> None:
    broker, stand_in = running_stand_in
    args = ["--port", str(broker.port), "--data-dir", str(broker.data_dir)]
    assert streamer_main(["kafka", "start", *args]) == 0
    captured = capsys.readouterr()
    assert f"already running on {broker.bootstrap} (pid {stand_in.pid})" in captured.err
    assert captured.out.splitlines()[-1] == broker.bootstrap
    assert streamer_main(["kafka", "status", *args]) == 0
    assert f"pid: {stand_in.pid}" in capsys.readouterr().out


def test_cli_port_defaults_to_the_bootstrap_environment(
    tmp_path: Path, free_port: int, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", f"localhost:{free_port}")
    assert streamer_main(["kafka", "status", "--data-dir", str(tmp_path)]) == 3
    assert f"bootstrap: 127.0.0.1:{free_port}" in capsys.readouterr().out
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", "kafka.prod:9092")
    assert streamer_main(["kafka", "status"]) == 1
    assert "only a local development broker" in capsys.readouterr().err


def test_cli_reports_a_refused_start_with_exit_1(
    tmp_path: Path, free_port: int, capsys: pytest.CaptureFixture[str]
) -> None:
    with socket.socket() as occupant:
        occupant.bind((settings.LOOPBACK_HOST, free_port))
        occupant.listen()
        code = streamer_main(["kafka", "start", "--port", str(free_port), "--data-dir", str(tmp_path / "d")])
    assert code == 1
    assert f"port {free_port}" in capsys.readouterr().err


def test_bootstrap_servers_default_to_the_local_standard_port(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("KAFKA_BOOTSTRAP_SERVERS", raising=False)
    assert settings.bootstrap_servers() == "127.0.0.1:9092"
