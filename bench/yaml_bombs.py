"""How fast hostile YAML is refused by ``load_yaml`` (issue 12, finding 7).

    .venv/bin/python bench/yaml_bombs.py [--runs 3] [--against REV]

Prints, per bomb, its size, the diagnostic and the best wall time of
``--runs`` refusals. ``--against REV`` repeats each with
``konorkestra/repo/yamlsafe.py`` as it was at git revision ``REV`` (see
``bench/yaml_parse.py``). Target: every bomb refused in well under 0.5 s
(``konorctl validate`` adds ~0.3 s of start-up).
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.yaml_parse import old_module
from konorkestra.repo import yamlsafe

HEAD = "apiVersion: konorkestra.io/v1\nkind: ConfigSet\nmetadata: {name: bomb, version: 1}\n"


def billion_laughs() -> str:
    lines = ['a: &a ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    for prev, cur in zip("abcdefgh", "bcdefghi", strict=True):
        lines.append(f"{cur}: &{cur} [" + ", ".join([f"*{prev}"] * 9) + "]")
    return "\n".join(lines) + "\n"


BOMBS: dict[str, Callable[[], str]] = {
    "20,000-deep [": lambda: "x: " + "[" * 20_000 + "]" * 20_000 + "\n",
    "20,000-deep {a: flow maps": lambda: "x: " + "{a: " * 20_000 + "}" * 20_000 + "\n",
    "20,000-deep block mappings": lambda: "".join(
        " " * i + "a:\n" for i in range(20_000)
    ),  # ~200 MB: the 1 MiB size limit refuses it before any scanning
    "1,400-deep block mappings (< 1 MiB)": lambda: "".join(" " * i + "a:\n" for i in range(1_400)),
    "20,000-deep block sequences (- - -)": lambda: "x:\n" + "- " * 20_000 + "z\n",
    "billion laughs": billion_laughs,
    "100k aliases": lambda: "a: &a [x, y, z]\nb: [*a" + ", *a" * 99_999 + "]\n",
}


def refuse(module: ModuleType, data: bytes, runs: int) -> tuple[float, str]:
    best, outcome = float("inf"), "accepted (!)"
    for _ in range(runs):
        started = time.perf_counter()
        try:
            module.load_yaml(data)
        except module.YamlError as exc:
            outcome = f"{exc.code} at {exc.line}:{exc.column}: {exc.message}"
        best = min(best, time.perf_counter() - started)
    return best, outcome


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--against", metavar="REV", help="also time yamlsafe.py at git REV")
    args = parser.parse_args()
    old = old_module(args.against) if args.against else None
    for name, make in BOMBS.items():
        data = (HEAD + make()).encode()
        best, outcome = refuse(yamlsafe, data, args.runs)
        print(f"{name:38} {len(data):>11,} B  {best * 1000:9.1f} ms  {outcome}")
        if old is not None:
            best, outcome = refuse(old, data, args.runs)
            print(f"{'  (' + args.against + ')':38} {'':>13}  {best * 1000:9.1f} ms  {outcome}")


if __name__ == "__main__":
    main()
