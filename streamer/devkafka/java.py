"""The Java runtime that runs the broker: `$JAVA_HOME/bin/java`, else `java` on PATH."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

from streamer.devkafka.errors import DevKafkaError, text_tail

# Kafka 4 brokers need Java 17; 3.x brokers support Java 11 and later.
MINIMUM_JAVA = {3: 11}
MINIMUM_JAVA_FROM_KAFKA_4 = 17
_VERSION_LINE = re.compile(r'version "(\d+)(?:\.(\d+))?')


def minimum_java(kafka_major: int) -> int:
    return MINIMUM_JAVA.get(kafka_major, MINIMUM_JAVA_FROM_KAFKA_4)


def find_java() -> str:
    if java_home := os.environ.get("JAVA_HOME"):
        candidate = Path(java_home) / "bin" / "java"
        if candidate.is_file():
            return str(candidate)
    if found := shutil.which("java"):
        return found
    raise DevKafkaError(
        "Java is not installed: no `java` on PATH and no JAVA_HOME/bin/java. The local Kafka broker runs "
        "on Java 17: install it (e.g. `apt-get install openjdk-17-jre-headless`) or set JAVA_HOME, or point "
        "KAFKA_BOOTSTRAP_SERVERS at an existing broker instead"
    )


def parse_java_major(version_output: str) -> int | None:
    """The feature release in `java -version` output (`"1.8.0_392"` → 8, `"17.0.15"` → 17)."""
    match = _VERSION_LINE.search(version_output)
    if match is None:
        return None
    first, second = int(match.group(1)), int(match.group(2) or 0)
    return second if first == 1 else first


def java_major(java: str) -> int:
    result = subprocess.run([java, "-version"], capture_output=True, text=True, timeout=60, check=False)
    output = result.stderr + result.stdout
    major = parse_java_major(output)
    if result.returncode != 0 or major is None:
        raise DevKafkaError(f"`{java} -version` did not report a Java version:\n{text_tail(output)}")
    return major


def require_java(kafka_major: int) -> str:
    """The path of a Java runtime new enough for this Kafka release."""
    java = find_java()
    have, need = java_major(java), minimum_java(kafka_major)
    if have < need:
        raise DevKafkaError(
            f"{java} is Java {have}, but Kafka {kafka_major}.x needs Java {need} or later: install a newer "
            "JDK and set JAVA_HOME to it"
        )
    return java
