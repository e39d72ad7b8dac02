"""Hostile and careless YAML through the real ``konorctl validate`` (issue 12, findings 5, 7).

Each case is one file in a fresh directory, judged by the installed CLI in a
subprocess, as a user or a pre-receive hook would run it. Every case must end
in exit 1 with the file and line in the output and no traceback: bombs are
refused (by the scanner, before composing; ``bench/yaml_bombs.py`` times
them), near-miss definitions are errors instead of silently vanishing.
Self-contained: uses no fixture of ``tests/adversarial/conftest.py``.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

KONORCTL = Path(sys.executable).with_name("konorctl")
HEAD = "apiVersion: konorkestra.io/v1\nkind: ConfigSet\nmetadata: {name: bomb, version: 1}\n"
BODY = "metadata: {name: web, version: 1}\nspec: {data: {}}\n"


def laughs() -> str:
    lines = ['a: &a ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    for prev, cur in zip("abcdefgh", "bcdefghi", strict=True):
        lines.append(f"{cur}: &{cur} [" + ", ".join([f"*{prev}"] * 9) + "]")
    return "\n".join(lines) + "\n"


# (file content, line of the diagnostic, words in it)
BOMBS = {
    "deep-flow-seq": (HEAD + "x: " + "[" * 20_000 + "]" * 20_000 + "\n", 4, "nested deeper"),
    "deep-flow-map": (HEAD + "x: " + "{a: " * 20_000 + "}" * 20_000 + "\n", 4, "nested deeper"),
    "deep-block-map": (
        HEAD + "".join(" " * i + "a:\n" for i in range(1_400)),
        3 + 66,
        "nested deeper",
    ),
    "deep-block-seq": (HEAD + "x:\n" + "- " * 20_000 + "z\n", 5, "nested deeper"),
    "billion-laughs": (HEAD + laughs(), 9, "alias"),  # where the expansion passes 250,000
    "100k-aliases": (HEAD + "a: &a [x, y, z]\nb: [*a" + ", *a" * 99_999 + "]\n", 5, "1000 aliases"),
}

NEAR_MISSES = {
    "core-v1": ("apiVersion: v1\nkind: ConfigSet\n" + BODY, 1, "api-version"),
    "typo-group": ("apiVersion: konorkestra.i/v1\nkind: Group\n" + BODY, 1, "api-version"),
    "no-api-version": ("kind: Policy\n" + BODY, 1, "api-version"),
    "key-apiversion": ("apiversion: konorkestra.io/v1\nkind: ConfigSet\n" + BODY, 1, "api-version"),
    "key-APIVersion": ("APIVersion: konorkestra.io/v1\nkind: Group\n" + BODY, 1, "api-version"),
    "key-Kind": ("apiVersion: konorkestra.io/v1\nKind: ConfigSet\n" + BODY, 2, "unknown-kind"),
    "key-KIND": ("apiVersion: konorkestra.io/v1\nKIND: Policy\n" + BODY, 2, "unknown-kind"),
    "key-metaData": (
        "apiVersion: konorkestra.io/v1\nkind: Group\nmetaData: {name: g}\n",
        3,
        "schema",
    ),
}


def validate(tmp_path: Path, text: str, *flags: str) -> tuple[int, str]:
    (tmp_path / "defs.yaml").write_text(text)
    done = subprocess.run(
        [str(KONORCTL), "validate", *flags, str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    return done.returncode, done.stdout + done.stderr


@pytest.mark.parametrize(("text", "line", "words"), BOMBS.values(), ids=BOMBS.keys())
def test_a_yaml_bomb_is_refused_with_its_place_and_no_traceback(
    tmp_path: Path, text: str, line: int, words: str
) -> None:
    code, output = validate(tmp_path, text)
    assert code == 1, output
    assert f"{tmp_path / 'defs.yaml'}:{line}:" in output
    assert "[yaml-limit]" in output and words in output
    assert "Traceback" not in output


@pytest.mark.parametrize(
    ("text", "line", "diagnostic"), NEAR_MISSES.values(), ids=NEAR_MISSES.keys()
)
def test_a_near_miss_definition_is_an_error_not_a_silent_drop(
    tmp_path: Path, text: str, line: int, diagnostic: str
) -> None:
    code, output = validate(tmp_path, text)
    assert code == 1, output
    assert f"{tmp_path / 'defs.yaml'}:{line}:" in output
    assert f"[{diagnostic}]" in output and "(hint: did you mean" in output
    assert "valid: 0 definitions" not in output and "Traceback" not in output


def test_someone_elses_documents_pass_and_verbose_notes_each(tmp_path: Path) -> None:
    other = (
        "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: web}\n---\n"
        "apiVersion: kyverno.io/v1\nkind: Policy\nmetadata: {name: labels}\n"
    )
    code, output = validate(tmp_path, other)
    assert (code, "note:" in output) == (0, False)
    code, output = validate(tmp_path, other, "-v")
    where = tmp_path / "defs.yaml"
    assert code == 0, output
    assert f"{where}:1: note: ignored document kind Deployment apiVersion apps/v1" in output
    assert f"{where}:5: note: ignored document kind Policy apiVersion kyverno.io/v1" in output
