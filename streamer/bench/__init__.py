"""`streamer bench`: measures real worker processes against a real broker (docs/performance.md).

One module per measurement: `ceiling` (a plain consumer), `throughput` (workers through both stages),
`latency` (produce → /metrics at a paced rate), `memory` (RSS per waiting call and per queue),
`recovery` (a restart on the same data dir), `profile` (py-spy). Around them: `stream` (the traffic,
from the simulator), `broker` (which broker, topics, producing), `worker` (one worker subprocess),
`context` (what a run shares), `scrape` (reading /metrics), `report` (table and JSON), and `runner`,
which runs everything in order.
"""
