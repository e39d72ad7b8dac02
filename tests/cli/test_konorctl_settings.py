"""Where konorctl's settings come from: flag after > flag before > env > context > default.

The order is checked on the pure :func:`choose` (every combination, by
hypothesis) and end to end through the real ``konorctl`` click tree.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import click
import pytest
from click.testing import CliRunner
from hypothesis import given
from hypothesis import strategies as st

from konorkestra.cli.client import DEFAULT_CENTER, Flags, Settings, choose
from konorkestra.cli.contexts import Config, Context
from konorkestra.cli.konorctl import cli
from konorkestra.cli.output import center_options


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in ("CENTER", "TOKEN", "CA", "CONFIG", "CONTEXT"):
        monkeypatch.delenv(f"KONORCTL_{name}", raising=False)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))


def write_config(tmp_path: Path, text: str) -> None:
    path = tmp_path / "xdg" / "konorkestra" / "konorctl.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


@click.command("settings-probe")
@center_options
def probe(center: str | None, token: str | None, output: str) -> None:
    """Print the settings a command would use (test only)."""
    s = Settings.resolve(center=center, token=token)  # what client() connects with
    click.echo(json.dumps({"center": s.center, "token": s.token, "ca": s.ca, "output": output}))


@pytest.fixture
def konorctl() -> Iterator[object]:
    cli.add_command(probe)
    try:
        yield lambda *args: json.loads(CliRunner().invoke(cli, list(args)).stdout)
    finally:
        cli.commands.pop("settings-probe")


urls = st.one_of(st.none(), st.sampled_from(["http://a:1", "https://b:2", "https://c:3"]))
words = st.one_of(st.none(), st.sampled_from(["t1", "t2", "t3"]))


@given(after=urls, before=urls, env=urls, ctx=urls, tok=st.tuples(words, words, words, words))
def test_each_setting_comes_from_the_first_layer_that_has_it(
    after: str | None,
    before: str | None,
    env: str | None,
    ctx: str | None,
    tok: tuple[str | None, ...],
) -> None:
    config = Config("c", {"c": Context(ctx, tok[3], "/ctx/ca.pem")})
    flags = Flags(after, tok[0]).over(Flags(before, tok[1]))
    got = choose(flags, Flags(env, tok[2]), config)
    assert got.center == next((u for u in (after, before, env, ctx) if u), DEFAULT_CENTER)
    assert got.token == next((t for t in tok if t), None)
    assert got.ca == "/ctx/ca.pem"
    assert got.configured == any((after, before, env, ctx))


def test_the_old_flat_file_is_the_default_context(tmp_path: Path) -> None:
    write_config(tmp_path, "center: https://file:1\ntoken: from-file\nca: /f/ca.pem\n")
    assert Settings.resolve(center=None, token=None) == Settings(
        "https://file:1", "from-file", "/f/ca.pem"
    )
    assert Settings.resolve(center=None, token=None, context="default").center == "https://file:1"


NAMED = """\
current-context: prod
contexts:
  prod: {center: "https://prod:7400", token: kt_prod.s, ca: /prod/ca.pem}
  lab: {center: "https://lab:7400", token: kt_lab.s}
"""


def test_the_current_context_else_the_named_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_config(tmp_path, NAMED)
    assert Settings.resolve(center=None, token=None) == Settings(
        "https://prod:7400", "kt_prod.s", "/prod/ca.pem"
    )
    monkeypatch.setenv("KONORCTL_CONTEXT", "lab")
    assert Settings.resolve(center=None, token=None) == Settings("https://lab:7400", "kt_lab.s")
    assert Settings.resolve(center=None, token=None, context="prod").token == "kt_prod.s"


def test_an_unknown_context_lists_the_known_ones(tmp_path: Path, konorctl: object) -> None:
    write_config(tmp_path, NAMED)
    result = CliRunner().invoke(cli, ["settings-probe", "--context", "nope"])
    assert result.exit_code == 1
    assert "no context 'nope' (contexts: lab, prod)" in result.stderr


def test_flags_before_and_after_the_subcommand(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, konorctl: object
) -> None:
    run = konorctl  # type: ignore[assignment]
    write_config(tmp_path, NAMED)
    assert run("settings-probe")["center"] == "https://prod:7400"
    assert run("--context", "lab", "settings-probe")["token"] == "kt_lab.s"
    assert run("settings-probe", "--context", "lab")["token"] == "kt_lab.s"
    monkeypatch.setenv("KONORCTL_CENTER", "https://env:1")
    assert run("settings-probe")["center"] == "https://env:1"
    assert run("--center", "https://before:2", "settings-probe")["center"] == "https://before:2"
    both = run("--center", "https://before:2", "settings-probe", "--center", "https://after:3")
    assert both["center"] == "https://after:3"
    ca = run("--ca", "/before.pem", "settings-probe", "--ca", "/after.pem")["ca"]
    assert ca == "/after.pem"
    assert run("--ca", "/before.pem", "settings-probe")["ca"] == "/before.pem"


def test_output_before_and_after(konorctl: object) -> None:
    run = konorctl  # type: ignore[assignment]
    assert run("settings-probe")["output"] == "table"
    assert run("-o", "json", "settings-probe")["output"] == "json"
    assert run("-o", "yaml", "settings-probe", "-o", "wide")["output"] == "table"


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("center: [unclosed\n", "cannot read"),
        ("- a list\n", "expected a mapping"),
        ("contexts:\n  prod: {tokn: x}\n", "context prod: unknown keys tokn"),
        ("contexts: [prod]\n", "contexts: expected a mapping"),
    ],
)
def test_a_broken_config_file_is_one_line_naming_the_file(
    tmp_path: Path, konorctl: object, text: str, says: str
) -> None:
    write_config(tmp_path, text)
    result = CliRunner().invoke(cli, ["settings-probe"])
    assert result.exit_code == 1
    assert result.stderr.count("\n") == 1 and "konorctl.yaml" in result.stderr
    assert says in result.stderr


def test_a_url_without_a_scheme_is_a_usage_error(konorctl: object) -> None:
    result = CliRunner().invoke(cli, ["settings-probe", "--center", "center:7400"])
    assert result.exit_code == 2 and "starts with http:// or https://" in result.stderr
