"""konorctl's Center client: where settings come from, and one-line errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from konorkestra.cli.client import DEFAULT_CENTER, CenterClient, CenterError, Settings


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in ("KONORCTL_CENTER", "KONORCTL_TOKEN", "KONORCTL_CA", "KONORCTL_CONFIG",
                 "KONORCTL_CONTEXT"):  # fmt: skip
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    monkeypatch.setenv("HOME", str(tmp_path / "home"))


def write_config(tmp_path: Path, text: str) -> None:
    path = tmp_path / "xdg" / "konorkestra" / "konorctl.yaml"
    path.parent.mkdir(parents=True)
    path.write_text(text)


def test_defaults_without_any_settings() -> None:
    assert Settings.resolve(center=None, token=None) == Settings(DEFAULT_CENTER)


def test_flags_beat_environment_beat_the_xdg_config_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_config(tmp_path, "center: http://file:1\ntoken: from-file\n")
    assert Settings.resolve(center=None, token=None) == Settings("http://file:1", "from-file")
    monkeypatch.setenv("KONORCTL_TOKEN", "from-env")
    monkeypatch.setenv("KONORCTL_CENTER", "http://env:2/")
    assert Settings.resolve(center=None, token=None) == Settings("http://env:2", "from-env")
    assert Settings.resolve(center="http://flag:3", token="from-flag") == Settings(
        "http://flag:3", "from-flag"
    )


def test_a_broken_config_file_is_a_clear_error(tmp_path: Path) -> None:
    write_config(tmp_path, "center: [unclosed\n")
    with pytest.raises(CenterError, match=r"konorctl\.yaml"):
        Settings.resolve(center=None, token=None)


def test_connection_refused_names_the_url_and_what_to_check() -> None:
    with CenterClient(Settings("http://127.0.0.1:9")) as client, pytest.raises(CenterError) as err:
        client.get("/v1/commits")
    text = err.value.format_message()
    assert "http://127.0.0.1:9" in text and "connection refused" in text
    assert "nothing is listening at 127.0.0.1:9" in text
    assert "\n" not in text
