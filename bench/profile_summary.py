"""Summarise py-spy collapsed stacks: where the gateway process spends its samples.

    .venv/bin/python bench/proxy_overhead.py --profile /tmp/prof
    .venv/bin/python bench/profile_summary.py /tmp/prof/transfer-riskgate.txt [--top 25]

Prints the functions with the most inclusive samples (the function or anything
it calls is on the stack) and the most self samples (the function itself runs),
as shares of all samples, skipping the idle event loop.
"""

from __future__ import annotations

import argparse
import sys
from collections import Counter
from pathlib import Path

IDLE = ("select (selectors.py", "_run_once (asyncio/base_events.py", "run_forever")


def _frames(stack: str) -> list[str]:
    return [f.split(":")[0] if f.count(":") > 1 else f for f in stack.split(";")]


def summarise(path: Path, top: int) -> str:
    inclusive: Counter[str] = Counter()
    self_: Counter[str] = Counter()
    total = idle = 0
    for line in path.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack:
            continue
        count = int(count_text)
        frames = _frames(stack)
        total += count
        if frames and any(frames[-1].startswith(p) for p in IDLE[:1]):
            idle += count
            continue
        for frame in set(frames):
            inclusive[frame] += count
        self_[frames[-1]] += count
    busy = max(1, total - idle)
    lines = [f"{path.name}: {total} samples, {idle / max(1, total):.0%} idle in select(); "
             "shares below are of the busy samples"]
    lines.append("\ninclusive (function and what it calls):")
    lines += [f"  {n / busy:6.1%}  {name}" for name, n in inclusive.most_common(top)]
    lines.append("\nself (the function's own code):")
    lines += [f"  {n / busy:6.1%}  {name}" for name, n in self_.most_common(top)]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("files", nargs="+", type=Path)
    parser.add_argument("--top", type=int, default=25)
    args = parser.parse_args(argv)
    for path in args.files:
        print(summarise(path, args.top), end="\n\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
