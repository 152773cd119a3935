"""`LocalKafka`: one single-node Apache Kafka on 127.0.0.1, its data dir, its life cycle.

The data dir holds everything about one broker: `server.properties`, the logging configuration,
`broker.pid`, `broker.log` (the JVM's stdout and stderr), `kraft-combined-logs/` (the topic data),
`security/` (the mode it was formatted with; certificates and passwords when secured) and `client.env`
(the KAFKA_* settings of its clients).
"""

from __future__ import annotations

import base64
import fcntl
import os
import shlex
import shutil
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from streamer import ports
from streamer.devkafka import maven, process, settings
from streamer.devkafka.errors import DevKafkaError, file_tail, text_tail
from streamer.devkafka.java import require_java
from streamer.devkafka.probe import broker_answers
from streamer.devkafka.properties import (
    LOG_LEVEL_PROPERTY,
    BrokerConfig,
    LoggingConfig,
    logging_config,
    server_properties,
)
from streamer.devkafka.security import (
    CLIENT_ENV_NAME,
    DEFAULT_SECURITY,
    BrokerSecurity,
    parse_mode,
    read_client_env,
    write_client_env,
)

DEFAULT_PORT = 9092
DEFAULT_HEAP_OPTS = "-Xmx1g -Xms256m"
JVM_OPTS = ("-XX:+UseG1GC", "-XX:MaxGCPauseMillis=20", "-XX:+ExitOnOutOfMemoryError", "-Djava.awt.headless=true")
START_TIMEOUT_SECONDS = 120.0
STOP_TIMEOUT_SECONDS = 30.0


def new_cluster_id() -> str:
    """A random cluster id in Kafka's format: 16 random bytes, base64url, unpadded (22 characters).

    Like Kafka's `Uuid.randomUuid()`, never one that starts with "-": the storage tool's argument
    parser would read it as an option.
    """
    while True:
        cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).rstrip(b"=").decode()
        if not cluster_id.startswith("-"):
            return cluster_id


@dataclass(frozen=True)
class BrokerStatus:
    running: bool
    pid: int | None
    bootstrap: str
    data_dir: Path
    log_file: Path
    security: str = DEFAULT_SECURITY
    client_env: Path | None = None


class LocalKafka:
    """A local development broker, identified by its port and its data dir.

    `heap_opts` defaults to `KAFKA_HEAP_OPTS` (Kafka's own convention), else `-Xmx1g -Xms256m`.
    `progress` receives one line per slow step (fetching jars, formatting storage, starting).
    `security` is plaintext, ssl or sasl_ssl (streamer/devkafka/security.py); by default the mode the
    data dir was formatted with, else plaintext. A data dir keeps its mode: another one needs `fresh`.
    """

    def __init__(
        self,
        port: int = DEFAULT_PORT,
        data_dir: Path | None = None,
        version: str | None = None,
        heap_opts: str | None = None,
        progress: Callable[[str], None] | None = None,
        security: str | None = None,
    ) -> None:
        self.port = port
        self.requested_security = parse_mode(security) if security is not None else None
        self.version = version or settings.kafka_version()
        self.data_dir = (data_dir or settings.default_data_dir(port)).expanduser().absolute()
        self.heap_opts = heap_opts or os.environ.get("KAFKA_HEAP_OPTS") or DEFAULT_HEAP_OPTS
        self._progress = progress or (lambda _line: None)
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def bootstrap(self) -> str:
        return f"{settings.LOOPBACK_HOST}:{self.port}"

    @property
    def pid_file(self) -> Path:
        return self.data_dir / "broker.pid"

    @property
    def log_file(self) -> Path:
        return self.data_dir / "broker.log"

    @property
    def properties_file(self) -> Path:
        return self.data_dir / "server.properties"

    @property
    def log_dir(self) -> Path:
        return self.data_dir / "kraft-combined-logs"

    @property
    def version_file(self) -> Path:
        return self.data_dir / "kafka-version"

    @property
    def security_folder(self) -> Path:
        return self.data_dir / "security"

    @property
    def security_mode_file(self) -> Path:
        return self.security_folder / "mode"

    @property
    def client_env_file(self) -> Path:
        """KEY=VALUE lines of the KAFKA_* settings a client of this broker needs (written at each start)."""
        return self.data_dir / CLIENT_ENV_NAME

    def formatted_security(self) -> str | None:
        """The mode the data dir's storage was formatted with; None while it is not formatted."""
        if not (self.log_dir / "meta.properties").is_file():
            return None
        if self.security_mode_file.is_file():
            return self.security_mode_file.read_text().strip()
        return DEFAULT_SECURITY  # formatted before security modes existed

    @property
    def security(self) -> BrokerSecurity:
        """The security this broker runs (or will run) with."""
        mode = self.formatted_security() or self.requested_security or DEFAULT_SECURITY
        return BrokerSecurity(mode, self.security_folder)

    def client_settings(self) -> dict[str, str]:
        """The KAFKA_* settings of a client of this broker, as written to `client.env`."""
        return read_client_env(self.client_env_file)

    def running_pid(self) -> int | None:
        """The pid of this broker when the pid file names a live Java process running our properties."""
        pid = process.read_pid(self.pid_file)
        if pid is not None and process.is_broker_process(pid, self.properties_file):
            return pid
        return None

    def is_running(self) -> bool:
        return self.running_pid() is not None

    def status(self) -> BrokerStatus:
        pid = self.running_pid()
        client_env = self.client_env_file if self.client_env_file.is_file() else None
        return BrokerStatus(pid is not None, pid, self.bootstrap, self.data_dir, self.log_file, self.security.mode,
                            client_env)

    def start(
        self, timeout: float = START_TIMEOUT_SECONDS, fresh: bool = False, die_with_parent: bool = False
    ) -> str:
        """Start the broker detached and return its bootstrap address once it serves clients.

        A broker already running on this data dir is left alone (its address is returned), unless
        `fresh` asks for wiped data, which needs a stop first. `die_with_parent` ties the broker to the
        calling thread (for test sessions); without it the broker outlives this process.
        """
        with self._exclusive():
            return self._start(timeout, fresh, die_with_parent)

    def stop(self, timeout: float = STOP_TIMEOUT_SECONDS) -> bool:
        """Stop this broker (SIGTERM, SIGKILL after `timeout`); False when it was not running.

        Only the pid from our pid file is signalled, and only when it is our broker; a stale pid file
        is removed.
        """
        with self._exclusive():
            return self._stop(timeout)

    @contextmanager
    def _exclusive(self) -> Iterator[None]:
        """One start or stop at a time per data dir, across processes (the lock sits beside the data
        dir, so a fresh start may wipe the data dir while holding it)."""
        self.data_dir.parent.mkdir(parents=True, exist_ok=True)
        with (self.data_dir.parent / f".{self.data_dir.name}.lock").open("w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            yield

    def _start(self, timeout: float, fresh: bool, die_with_parent: bool) -> str:
        running = self.running_pid()
        if running is not None:
            if fresh:
                raise DevKafkaError(
                    f"a broker is running on port {self.port} (pid {running}); a fresh start wipes "
                    f"its data, so stop it first: streamer kafka stop --port {self.port}"
                )
            self._check_data_dir_security()
            if not self.client_env_file.is_file():  # started by a release that wrote none
                write_client_env(self.client_env_file, self.security.client_settings(self.bootstrap))
            return self.bootstrap
        if process.port_in_use(settings.LOOPBACK_HOST, self.port):
            raise DevKafkaError(
                f"port {self.port} on {settings.LOOPBACK_HOST} is already in use by another process, so the "
                f"broker cannot listen there: free it, or choose another port with --port N (and set "
                f"KAFKA_BOOTSTRAP_SERVERS=127.0.0.1:N for the other commands)"
            )
        kafka_major = settings.kafka_major(self.version)
        if not fresh:
            self._check_data_dir_version()
            self._check_data_dir_security()
        java = require_java(kafka_major)
        libs = maven.resolve_kafka_libs(self.version, settings.libs_dir(self.version), self._progress)
        if fresh:
            shutil.rmtree(self.data_dir, ignore_errors=True)
        self.data_dir.mkdir(parents=True, exist_ok=True)
        security = self.security
        security.prepare(self._progress)
        log_config = self._write_config(kafka_major, libs, security)
        if self.formatted_security() is None:
            self._format_storage(java, libs, log_config.jvm_option, security)
        write_client_env(self.client_env_file, security.client_settings(self.bootstrap))
        broker = self._launch(java, libs, log_config.jvm_option, die_with_parent)
        try:
            self._wait_until_serving(broker, timeout)
        except BaseException:
            # Interrupted or failed: a half-started broker must not outlive the start that launched it.
            self._stop(STOP_TIMEOUT_SECONDS)
            raise
        return self.bootstrap

    def _stop(self, timeout: float) -> bool:
        pid = self.running_pid()
        if pid is None:
            self.pid_file.unlink(missing_ok=True)
            return False
        child = self._process if self._process is not None and self._process.pid == pid else None
        process.terminate(pid, timeout, child)
        self.pid_file.unlink(missing_ok=True)
        self._process = None
        return True

    def _check_data_dir_version(self) -> None:
        """A data dir formatted by another Kafka release may not start; say so before trying."""
        if not self.version_file.is_file():
            return
        formatted_by = self.version_file.read_text().strip()
        if formatted_by != self.version:
            raise DevKafkaError(
                f"the data dir {self.data_dir} was made by Kafka {formatted_by}, not {self.version}: start "
                f"with --fresh to wipe it, or set STREAMER_KAFKA_VERSION={formatted_by}"
            )

    def _check_data_dir_security(self) -> None:
        """A data dir keeps the security it was formatted with (its SCRAM users live in the storage)."""
        formatted = self.formatted_security()
        if formatted is None or self.requested_security in (None, formatted):
            return
        raise DevKafkaError(
            f"the data dir {self.data_dir} was made with --security {formatted}, not {self.requested_security}: "
            f"start it with --security {formatted}, or add --fresh to remake it with --security "
            f"{self.requested_security} (a fresh start wipes all topics; a running broker must be stopped first)"
        )

    def _write_config(self, kafka_major: int, libs: Path, security: BrokerSecurity) -> LoggingConfig:
        controller_port = ports.lease_port()
        config = BrokerConfig(self.port, controller_port, self.log_dir, kafka_major, security.protocol,
                              security.server_properties())
        # It may hold the keystore and inter-broker passwords: for its owner's eyes only.
        self.properties_file.touch(mode=0o600)
        self.properties_file.chmod(0o600)
        self.properties_file.write_text(server_properties(config))
        log_config = logging_config(maven.uses_log4j2(p.name for p in libs.glob("*.jar")), self.data_dir)
        log_config.path.write_text(log_config.text)
        return log_config

    def _format_storage(self, java: str, libs: Path, log_option: str, security: BrokerSecurity) -> None:
        self._progress(f"formatting the KRaft storage in {self.log_dir}"
                       + (" with the SCRAM users" if security.uses_sasl else ""))
        cluster_id = new_cluster_id()
        command = [
            java, f"-D{LOG_LEVEL_PROPERTY}=WARN", log_option, "-cp", str(libs / "*"),
            "kafka.tools.StorageTool", "format", "-t", cluster_id, "-c", str(self.properties_file),
        ]
        result = subprocess.run(command + security.format_arguments(), capture_output=True, text=True, timeout=120,
                                check=False)
        if result.returncode != 0:
            raise DevKafkaError(
                f"formatting the broker storage failed (exit {result.returncode}):\n"
                f"{text_tail(result.stdout + result.stderr)}\n"
                f"command (SCRAM users left out): {shlex.join(command)}"
            )
        self.version_file.write_text(self.version + "\n")
        self.security_folder.mkdir(mode=0o700, exist_ok=True)
        self.security_mode_file.write_text(security.mode + "\n")

    def _launch(
        self, java: str, libs: Path, log_option: str, die_with_parent: bool
    ) -> subprocess.Popen[bytes]:
        command = [
            java, *shlex.split(self.heap_opts), *JVM_OPTS, f"-D{LOG_LEVEL_PROPERTY}=INFO", log_option,
            "-cp", str(libs / "*"), "kafka.Kafka", str(self.properties_file),
        ]
        self._progress(f"starting Kafka {self.version} on {self.bootstrap} (log: {self.log_file})")
        with self.log_file.open("wb") as log:
            # A session of its own: Ctrl-C in the terminal reaches the caller, not the broker, and the
            # broker outlives a CLI that exits.
            self._process = subprocess.Popen(
                command,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=self.data_dir,
                start_new_session=True,
                preexec_fn=process.die_with_parent if die_with_parent else None,
            )
        self.pid_file.write_text(f"{self._process.pid}\n")
        return self._process

    def _wait_until_serving(self, broker: subprocess.Popen[bytes], timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while True:
            exit_code = broker.poll()
            if exit_code is not None:
                self.pid_file.unlink(missing_ok=True)
                self._process = None
                raise DevKafkaError(
                    f"the Kafka broker exited (code {exit_code}) before it served clients on {self.bootstrap}; "
                    f"{self.log_file} ends with:\n{file_tail(self.log_file)}\n"
                    "If the data dir is damaged or from another setup, start again with --fresh"
                )
            if process.accepts_connections(settings.LOOPBACK_HOST, self.port) and broker_answers(
                    self.bootstrap, client_env=self.client_settings()):
                return
            if time.monotonic() >= deadline:
                raise DevKafkaError(
                    f"the Kafka broker did not serve clients on {self.bootstrap} within {timeout:.0f} s and was "
                    f"stopped; {self.log_file} ends with:\n{file_tail(self.log_file)}"
                )
            time.sleep(0.25)
