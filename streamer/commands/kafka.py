"""`streamer kafka start|stop|status`: the local development broker (see docs/kafka.md)."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from streamer.devkafka import DevKafkaError, LocalKafka, bootstrap_servers
from streamer.devkafka.broker import START_TIMEOUT_SECONDS, STOP_TIMEOUT_SECONDS
from streamer.devkafka.security import SECURITY_MODES
from streamer.devkafka.settings import local_broker_port

HELP = "start, stop or inspect a local single-node Apache Kafka (KRaft) on 127.0.0.1, for development"
DESCRIPTION = """\
A local single-node Apache Kafka (KRaft, broker and controller in one JVM) on 127.0.0.1, built from the
official org.apache.kafka artifacts on Maven Central (fetched once with Maven, then reused offline) and
run with the machine's Java 17. It is for development, tests and demos only: to use an existing
cluster, set KAFKA_BOOTSTRAP_SERVERS and do not run `streamer kafka` at all.

The port comes from --port, else from KAFKA_BOOTSTRAP_SERVERS (default 127.0.0.1:9092), which must then
name 127.0.0.1 or localhost. Each port has its own data dir, so several brokers can run side by side.

--security ssl gives the client listener TLS (a CA and a broker certificate are made in the data dir);
sasl_ssl adds SCRAM-SHA-512 logins (user `streamer`, its password in a file). Each start writes the
settings a client needs (KAFKA_BOOTSTRAP_SERVERS, KAFKA_SECURITY_PROTOCOL, ...) as KEY=VALUE lines to
client.env in the data dir and prints its path; load them with `set -a; . PATH; set +a`.

Environment: STREAMER_KAFKA_VERSION (default 3.9.1), STREAMER_CACHE_DIR (jar cache and data dirs,
default ~/.cache/streamer), KAFKA_HEAP_OPTS (default "-Xmx1g -Xms256m").

Exit codes: 0 done (status: running), 1 error, 3 status: stopped.
"""

EXIT_ERROR = 1
EXIT_STOPPED = 3


def add_arguments(parser: argparse.ArgumentParser) -> None:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--port", type=int, default=None, metavar="N",
        help="broker port on 127.0.0.1 (default: the port of KAFKA_BOOTSTRAP_SERVERS, else 9092)",
    )
    common.add_argument(
        "--data-dir", type=Path, default=None, metavar="DIR",
        help="the broker's data dir (default: $STREAMER_CACHE_DIR/kafka-data/PORT)",
    )
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    start = actions.add_parser(
        "start", parents=[common], help="start the broker detached; print its bootstrap address last"
    )
    start.add_argument("--fresh", action="store_true", help="wipe the data dir (all topics) before starting")
    start.add_argument(
        "--security", choices=SECURITY_MODES, default=None, type=str.lower,
        help="plaintext, ssl (TLS) or sasl_ssl (TLS + SCRAM-SHA-512 login); default: what the data dir was "
             "made with, else plaintext (another mode needs --fresh)",
    )
    start.add_argument(
        "--timeout", type=float, default=START_TIMEOUT_SECONDS, metavar="SECONDS",
        help=f"how long to wait for the broker to serve clients (default: {START_TIMEOUT_SECONDS:.0f})",
    )
    actions.add_parser(
        "stop", parents=[common], help=f"stop the broker (SIGTERM, SIGKILL after {STOP_TIMEOUT_SECONDS:.0f} s)"
    )
    actions.add_parser("status", parents=[common], help="print running/stopped, pid and bootstrap address")


def run(args: argparse.Namespace) -> int:
    try:
        port = args.port if args.port is not None else local_broker_port(bootstrap_servers())
        broker = LocalKafka(port=port, data_dir=args.data_dir, progress=_say, security=getattr(args, "security", None))
        if args.action == "start":
            return _start(broker, args.fresh, args.timeout)
        if args.action == "stop":
            return _stop(broker)
        return _status(broker)
    except DevKafkaError as error:
        print(f"streamer kafka {args.action}: error: {error}", file=sys.stderr)
        return EXIT_ERROR


def _say(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def _start(broker: LocalKafka, fresh: bool, timeout: float) -> int:
    pid = broker.running_pid()
    if pid is not None and not fresh:
        bootstrap = broker.start(timeout=timeout)  # refuses another --security than the running one's
        _say(f"a broker is already running on {bootstrap} (pid {pid}); nothing changed "
             f"(security {broker.security.mode})")
    else:
        began = time.monotonic()
        bootstrap = broker.start(timeout=timeout, fresh=fresh)
        _say(f"Kafka {broker.version} serves clients on {bootstrap} after {time.monotonic() - began:.1f} s "
             f"(pid {broker.running_pid()}, security {broker.security.mode}, data: {broker.data_dir})")
    _say(f"client settings: {broker.client_env_file}")
    print(bootstrap)
    return 0


def _stop(broker: LocalKafka) -> int:
    pid = broker.running_pid()
    if pid is None:
        _say(f"no broker is running on {broker.bootstrap} (data dir {broker.data_dir})")
        return 0
    began = time.monotonic()
    broker.stop()
    _say(f"stopped the broker on {broker.bootstrap} (pid {pid}) in {time.monotonic() - began:.1f} s")
    return 0


def _status(broker: LocalKafka) -> int:
    status = broker.status()
    print(f"status: {'running' if status.running else 'stopped'}")
    print(f"pid: {status.pid if status.pid is not None else '-'}")
    print(f"bootstrap: {status.bootstrap}")
    print(f"security: {status.security}")
    print(f"client settings: {status.client_env or '-'}")
    print(f"data dir: {status.data_dir}")
    print(f"log: {status.log_file}")
    return 0 if status.running else EXIT_STOPPED
