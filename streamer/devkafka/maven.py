"""The broker's jars: the official `org.apache.kafka` artifacts from Maven Central, resolved once.

Maven copies `kafka_2.13` and `kafka-storage` with all their runtime dependencies into a private work
folder; a second pass adds the logging binding the binary tarball ships but the POMs leave out. Only a
complete set is moved into place (with a manifest), so later starts run offline and never see half a
download, even when two processes resolve the same version at once.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Callable, Iterable
from html import escape
from pathlib import Path

from streamer.devkafka.errors import DevKafkaError, text_tail

MANIFEST_NAME = "resolved.txt"
KAFKA_ARTIFACTS = ("org.apache.kafka:kafka_2.13", "org.apache.kafka:kafka-storage")
RELOAD4J = "ch.qos.reload4j:reload4j:1.2.25"
MAVEN_TIMEOUT_SECONDS = 900


def is_resolved(libs: Path) -> bool:
    """True when the manifest exists and every jar it lists is present."""
    manifest = libs / MANIFEST_NAME
    if not manifest.is_file():
        return False
    names = manifest.read_text().split()
    return bool(names) and all((libs / name).is_file() for name in names)


def jar_version(jar_names: Iterable[str], artifact_id: str) -> str | None:
    """The version in a copied jar's file name (`log4j-core-2.24.3.jar` → `2.24.3`), if present."""
    pattern = re.compile(re.escape(artifact_id) + r"-(\d[\w.\-]*)\.jar")
    for name in jar_names:
        if match := pattern.fullmatch(name):
            return match.group(1)
    return None


def uses_log4j2(jar_names: Iterable[str]) -> bool:
    """Kafka 4.x logs through Log4j 2 (log4j-core on its classpath); 3.x through the Log4j 1 API."""
    return jar_version(jar_names, "log4j-core") is not None


def logging_binding(jar_names: Iterable[str]) -> list[str]:
    """The slf4j binding the broker's resolved dependencies need, as Maven coordinates.

    Log4j 2 (Kafka 4.x): the Log4j 2 slf4j bridge of the same release as log4j-core, for slf4j 1.x
    or 2.x. Log4j 1 API (Kafka 3.x): reload4j and slf4j-reload4j of the same release as slf4j-api.
    """
    names = list(jar_names)
    slf4j = jar_version(names, "slf4j-api")
    if slf4j is None:
        raise DevKafkaError(
            "the resolved Kafka jars contain no slf4j-api, so the logging binding cannot be chosen; "
            "this Kafka release is laid out differently from the ones this project knows (3.9, 4.x)"
        )
    log4j2 = jar_version(names, "log4j-core")
    if log4j2 is not None:
        bridge = "log4j-slf4j2-impl" if int(slf4j.split(".")[0]) >= 2 else "log4j-slf4j-impl"
        return [f"org.apache.logging.log4j:{bridge}:{log4j2}"]
    return [RELOAD4J, f"org.slf4j:slf4j-reload4j:{slf4j}"]


def pom_xml(coordinates: Iterable[str]) -> str:
    """A throwaway POM whose only purpose is to list dependencies for `dependency:copy-dependencies`."""
    dependencies = []
    for coordinate in coordinates:
        group_id, artifact_id, version = (escape(part, quote=False) for part in coordinate.split(":"))
        dependencies.append(
            f"    <dependency><groupId>{group_id}</groupId><artifactId>{artifact_id}</artifactId>"
            f"<version>{version}</version></dependency>"
        )
    body = "\n".join(dependencies)
    return (
        '<project xmlns="http://maven.apache.org/POM/4.0.0">\n'
        "  <modelVersion>4.0.0</modelVersion>\n"
        "  <groupId>local.streamer</groupId><artifactId>devkafka-libs</artifactId><version>1</version>\n"
        "  <packaging>pom</packaging>\n"
        f"  <dependencies>\n{body}\n  </dependencies>\n"
        "</project>\n"
    )


def resolve_kafka_libs(
    version: str, libs: Path, progress: Callable[[str], None] | None = None
) -> Path:
    """The folder of jars for Kafka `version`, fetched with Maven only when not already complete."""
    if is_resolved(libs):
        return libs
    maven = shutil.which("mvn")
    if maven is None:
        raise DevKafkaError(
            f"Maven (`mvn`) is not on PATH; it is needed once to fetch Kafka {version} from Maven Central "
            f"into {libs}. Install it (e.g. `apt-get install maven`), or point KAFKA_BOOTSTRAP_SERVERS at "
            "an existing broker instead"
        )
    if progress is not None:
        progress(f"fetching Apache Kafka {version} from Maven Central into {libs} (once)")
    libs.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=".resolve-", dir=libs.parent))
    try:
        fetched = work / "libs"
        _copy_dependencies(maven, work, [f"{artifact}:{version}" for artifact in KAFKA_ARTIFACTS], fetched)
        if not (fetched / f"kafka_2.13-{version}.jar").is_file():
            raise DevKafkaError(f"Maven finished but kafka_2.13-{version}.jar is not among the jars in {fetched}")
        _copy_dependencies(maven, work, logging_binding(_jar_names(fetched)), fetched)
        (fetched / MANIFEST_NAME).write_text("\n".join(sorted(_jar_names(fetched))) + "\n")
        _move_into_place(fetched, libs)
    finally:
        shutil.rmtree(work, ignore_errors=True)
        # A failed first resolution leaves no empty version folder behind.
        with contextlib.suppress(OSError):
            libs.parent.rmdir()
    return libs


def _jar_names(folder: Path) -> list[str]:
    return [path.name for path in folder.glob("*.jar")]


def _copy_dependencies(maven: str, work: Path, coordinates: list[str], output: Path) -> None:
    pom = work / "pom.xml"
    pom.write_text(pom_xml(coordinates))
    command = [
        maven, "-B", "-q", "-Dstyle.color=never", "-f", str(pom), "dependency:copy-dependencies",
        f"-DoutputDirectory={output}", "-DincludeScope=runtime",
    ]
    try:
        result = subprocess.run(
            command, capture_output=True, text=True, timeout=MAVEN_TIMEOUT_SECONDS, cwd=work, check=False
        )
    except subprocess.TimeoutExpired as exc:
        raise DevKafkaError(
            f"Maven did not finish fetching {', '.join(coordinates)} within {MAVEN_TIMEOUT_SECONDS} s; "
            "check the network access to Maven Central (repo.maven.apache.org)"
        ) from exc
    if result.returncode != 0:
        raise DevKafkaError(
            f"Maven failed (exit {result.returncode}) fetching {', '.join(coordinates)} from Maven Central; "
            f"its output ends with:\n{text_tail(result.stdout + result.stderr)}\n"
            "Check the version (STREAMER_KAFKA_VERSION) and the network access to repo.maven.apache.org"
        )


def _move_into_place(fetched: Path, libs: Path) -> None:
    """Publish the complete set; a set another process completed meanwhile wins and ours is dropped."""
    if libs.exists():
        if is_resolved(libs):
            return
        shutil.rmtree(libs)
    try:
        os.rename(fetched, libs)
    except OSError:
        if not is_resolved(libs):
            raise
