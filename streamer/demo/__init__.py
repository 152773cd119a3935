"""`streamer demo`: the local broker, a worker and live simulated traffic, started and stopped together."""
