"""The simulator against Erlang C: several seeds of the plain model, the mean and a 95 % confidence
interval of Service Level and ASA (docs/simulator.md, "Noise or bias"). Run from the project root:

    python scripts/simulator_bias.py --seeds 8 --hours 200
"""

from __future__ import annotations

import argparse
import statistics

from streamer.core.erlang import ErlangC
from streamer.simulate import scenarios
from streamer.simulate.model import simulate

START_MS = 1_780_300_800_000  # 2026-06-01T08:00:00Z, the command's default start
T_MS = 20_000
# Student's t, 97.5 % quantile, by degrees of freedom.
T975 = {1: 12.706, 2: 4.303, 3: 3.182, 4: 2.776, 5: 2.571, 6: 2.447, 7: 2.365, 8: 2.306, 9: 2.262, 10: 2.228,
        11: 2.201, 12: 2.179, 15: 2.131, 19: 2.093, 29: 2.045}


def one_run(seed: int, hours: float, warmup_hours: float) -> tuple[float, float]:
    """(SL(20 s), ASA) over the calls entering after the warm-up, from the events' own timestamps."""
    scenario = scenarios.plain(252, 120, 12)
    entered: dict[str, int] = {}
    within = answered = 0
    wait_ms = 0
    from_ms = START_MS + warmup_hours * 3_600_000
    for event in simulate(scenario, seed=seed, start_ms=START_MS, hours=hours):
        kind = event["type"]
        if kind == "call.enqueued":
            if _ts(event["ts"]) >= from_ms:
                entered[event["call_id"]] = _ts(event["ts"])
        elif kind == "call.answered" and event["call_id"] in entered:
            wait = _ts(event["ts"]) - entered.pop(event["call_id"])
            answered += 1
            wait_ms += wait
            within += wait <= T_MS
    return within / answered, wait_ms / answered / 1000


def _ts(text: str) -> int:
    from datetime import datetime

    return round(datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp() * 1000)


def _interval(values: list[float]) -> tuple[float, float]:
    mean = statistics.fmean(values)
    half = T975.get(len(values) - 1, 1.96) * statistics.stdev(values) / len(values) ** 0.5
    return mean, half


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seeds", type=int, default=8)
    parser.add_argument("--hours", type=float, default=200)
    parser.add_argument("--warmup-hours", type=float, default=1, help="calls entering earlier are left out")
    args = parser.parse_args()
    levels, asas = [], []
    for seed in range(1, args.seeds + 1):
        level, asa = one_run(seed, args.hours, args.warmup_hours)
        levels.append(level)
        asas.append(asa)
        print(f"seed {seed}: SL(20 s) {level:.4f}, ASA {asa:.2f} s", flush=True)
    theory = ErlangC(252, 120, 12)
    for name, values, exact in (("SL(20 s)", levels, theory.service_level(20)), ("ASA s", asas, theory.asa_seconds)):
        mean, half = _interval(values)
        print(f"{name}: mean {mean:.4f}, 95 % CI [{mean - half:.4f}, {mean + half:.4f}], Erlang C {exact:.4f}")


if __name__ == "__main__":
    main()
