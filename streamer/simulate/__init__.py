"""Synthetic contact-centre traffic and its queueing theory.

- `scenario`: what a run simulates (queues, agents, shifts, callback offer, overflow), validated.
- `scenarios`: the plain single-queue model of the traffic flags, and the demo day.
- `model`: the discrete-event model, scenario + seed in, schema-v1 event dicts out, in time order.
- `streamer.core.erlang` (in the core, shared with the live foresight): Erlang C and Erlang A
  steady-state figures, the model's reference.
- `clock`, `output`: timestamps, JSONL output and progress. Kafka output: `streamer.sources.kafka_sink`.
"""
