"""streamer: real-time contact-centre queue metrics on Kafka."""

__version__ = "0.1.0"
