"""How long ``load_yaml`` takes on large valid files and on examples/config-repo.

    .venv/bin/python bench/yaml_parse.py [--runs 3] [--against REV]

Prints, per input, its size, the outcome and the best and worst wall time of
``--runs`` loads. ``--against REV`` also times ``konorkestra/repo/yamlsafe.py``
as it was at git revision ``REV`` (loaded from ``git show`` into a throwaway
module), e.g. ``--against 065f591`` for the pure-Python round-trip loader that
preceded the libyaml one. Every Center ingest and every ``konorctl validate``
pays these times per file.
"""

from __future__ import annotations

import argparse
import importlib.util
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from konorkestra.repo import yamlsafe  # noqa: E402

HEAD = "apiVersion: konorkestra.io/v1\nkind: ConfigSet\nmetadata: {name: big, version: 1}\n"


def block_list(items: int) -> str:
    return HEAD + "spec:\n  data:\n    items:\n" + "    - 1\n" * items


def flow_lines(items: int) -> str:
    return HEAD + "spec:\n  data:\n    items: [\n" + "      1,\n" * items + "    ]\n"


def one_line_flow(items: int) -> str:
    return HEAD + "spec: {data: {items: [" + ",".join(["1"] * items) + "]}}\n"


def realistic(target: int) -> str:
    """A ConfigSet of nested service settings, mixed styles, ~``target`` bytes."""
    parts = [HEAD, "spec:\n  data:\n    services:\n"]
    size, i = 0, 0
    while size < target:
        entry = (
            f"      - name: service-{i}  # owned by team-{i % 7}\n"
            f"        image: registry.example.com/team-{i % 7}/service-{i}:1.{i % 30}.0\n"
            f"        replicas: {1 + i % 5}\n"
            f"        enabled: {'true' if i % 3 else 'false'}\n"
            f"        ratio: {i % 100 / 100}\n"
            f'        description: "Service {i}, handles: requests \\u00e9"\n'
            f"        env: {{LOG_LEVEL: info, REGION: eu-{i % 3}, TIMEOUT_MS: {100 * (i % 9)}}}\n"
            f"        ports: [{8000 + i % 100}, {9000 + i % 100}]\n"
            f"        script: |\n          #!/bin/sh\n"
            f"          exec /srv/service-{i} --port $PORT\n"
        )
        parts.append(entry)
        size += len(entry)
        i += 1
    return "".join(parts)


INPUTS: dict[str, Callable[[], str]] = {
    "130k-item block list": lambda: block_list(130_000),
    "60k-item flow list over lines": lambda: flow_lines(60_000),
    "250k-item one-line flow list": lambda: one_line_flow(250_000),
    "realistic ConfigSet, ~100 KB": lambda: realistic(100_000),
}


def old_module(rev: str) -> ModuleType:
    source = subprocess.run(
        ["git", "-C", str(ROOT), "show", f"{rev}:konorkestra/repo/yamlsafe.py"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    path = Path(tempfile.mkdtemp()) / f"yamlsafe_{rev}.py"
    path.write_text(source)
    spec = importlib.util.spec_from_file_location(path.stem, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def timed(module: ModuleType, data: bytes, runs: int) -> tuple[float, float, str]:
    times, outcome = [], ""
    for _ in range(runs):
        started = time.perf_counter()
        try:
            docs = module.load_yaml(data)
            outcome = f"ok, {len(docs)} document(s)"
        except module.YamlError as exc:
            outcome = f"{exc.code} at {exc.line}:{exc.column}: {exc.message}"
        times.append(time.perf_counter() - started)
    return min(times), max(times), outcome


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--against", metavar="REV", help="also time yamlsafe.py at git REV")
    args = parser.parse_args()
    modules = [("now", yamlsafe)]
    if args.against:
        modules.append((args.against, old_module(args.against)))
    cases = [(name, make().encode()) for name, make in INPUTS.items()]
    examples = sorted((ROOT / "examples" / "config-repo").rglob("*.yaml"))
    cases += [(str(p.relative_to(ROOT / "examples")), p.read_bytes()) for p in examples]
    for name, data in cases:
        for label, module in modules:
            best, worst, outcome = timed(module, data, args.runs)
            print(
                f"{name[:34]:34} {label:>8} {len(data):>10,} B "
                f"{best * 1000:9.1f} ms (..{worst * 1000:7.1f})  {outcome[:70]}"
            )


if __name__ == "__main__":
    main()
