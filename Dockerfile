# The streamer image: `streamer worker` by default; any other subcommand as the container command
# (docker-compose.yml runs the simulator from the same image).
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /src
COPY pyproject.toml README.md ./
COPY streamer ./streamer
RUN pip install . && rm -rf /src

RUN useradd --system --create-home --home-dir /home/streamer streamer \
    && mkdir -p /var/lib/streamer \
    && chown streamer /var/lib/streamer
USER streamer
WORKDIR /home/streamer

# Kafka is reached by its service name; the web server (/metrics, wallboard page) must listen on every
# interface, since loopback inside a container is unreachable from Prometheus; Faust keeps its table
# state (RocksDB) under APP_DATADIR, a volume so it survives container restarts.
ENV KAFKA_BOOTSTRAP_SERVERS=kafka:9092 \
    STREAMER_WEB_HOST=0.0.0.0 \
    APP_DATADIR=/var/lib/streamer
VOLUME ["/var/lib/streamer"]
EXPOSE 6066

ENTRYPOINT ["streamer"]
CMD ["worker"]
