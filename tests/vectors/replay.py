"""Reference replayer for the UDS conformance vectors (rules in README.md).

Example::

    for vector in load_vectors():
        replay(vector, send=sock.sendall, read_line=reader.readline, control=server.apply)

``read_line`` returns one line including ``\\n`` (``b""`` at end of stream) and
should raise on its own deadline; ``control`` applies a ``publish`` /
``set_stale`` step to the server and returns once watchers were notified.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

HERE = Path(__file__).parent


def load_vectors(directory: Path = HERE) -> Iterator[dict[str, Any]]:
    """Every vector in ``directory``, sorted by file name."""
    for path in sorted(directory.glob("*.json")):
        yield json.loads(path.read_text(encoding="utf-8"))


def mismatch(expected: Any, actual: Any, path: str = "$") -> str | None:
    """Why ``actual`` does not match ``expected``, or ``None`` when it does."""
    if expected == "$any":
        return None
    if expected == "$string":
        return None if isinstance(actual, str) else f"{path}: expected a string, got {actual!r}"
    if expected == "$number":
        ok = isinstance(actual, int | float) and not isinstance(actual, bool)
        return None if ok else f"{path}: expected a number, got {actual!r}"
    if isinstance(expected, dict):
        if not isinstance(actual, dict):
            return f"{path}: expected an object, got {actual!r}"
        for key, want in expected.items():
            if want == "$absent":
                if key in actual:
                    return f"{path}.{key}: expected absent, got {actual[key]!r}"
            elif key not in actual:
                return f"{path}.{key}: missing"
            elif (why := mismatch(want, actual[key], f"{path}.{key}")) is not None:
                return why
        return None
    if isinstance(expected, list):
        if not isinstance(actual, list) or len(actual) != len(expected):
            return f"{path}: expected {len(expected)} elements, got {actual!r}"
        for i, (want, got) in enumerate(zip(expected, actual, strict=True)):
            if (why := mismatch(want, got, f"{path}[{i}]")) is not None:
                return why
        return None
    if isinstance(expected, bool) or isinstance(actual, bool) or expected is None:
        same = type(expected) is type(actual) and expected == actual
    elif isinstance(expected, int | float):
        same = isinstance(actual, int | float) and expected == actual
    else:
        same = expected == actual
    return None if same else f"{path}: expected {expected!r}, got {actual!r}"


def step_bytes(step: dict[str, Any]) -> bytes | None:
    """The bytes a send step writes, or ``None`` for other steps."""
    if "send" in step:
        return json.dumps(step["send"], ensure_ascii=False).encode() + b"\n"
    if "send_raw" in step:
        return str(step["send_raw"]).encode()
    if "send_repeat" in step:
        rep = step["send_repeat"]
        return (rep["text"] * rep["count"] + rep["then"]).encode()
    return None


def replay(
    vector: dict[str, Any],
    *,
    send: Callable[[bytes], object],
    read_line: Callable[[], bytes],
    control: Callable[[dict[str, Any]], object],
) -> None:
    """Run every step of ``vector``; raise ``AssertionError`` naming the failing step."""
    for index, step in enumerate(vector["steps"]):
        where = f"{vector['name']} step {index}"
        data = step_bytes(step)
        if data is not None:
            send(data)
        elif "expect" in step:
            line = read_line()
            assert line, f"{where}: connection closed, expected {step['expect']!r}"
            why = mismatch(step["expect"], json.loads(line))
            assert why is None, f"{where}: {why}\n  line: {line[:500]!r}"
        elif "expect_closed" in step:
            line = read_line()
            assert line == b"", f"{where}: expected end of stream, got {line[:200]!r}"
        elif "publish" in step or "set_stale" in step:
            control(step)
        else:
            raise AssertionError(f"{where}: unknown step {sorted(step)}")
