"""The module-level app Faust's command line (`faust -A streamer.app.worker_app worker`) loads."""

from streamer.app.main import create_app

app = create_app()
