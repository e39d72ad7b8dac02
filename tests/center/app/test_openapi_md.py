"""``docs/reference/api.md``'s route table, parameters and schemas are generated from
``/v1/openapi.json`` (:mod:`konorkestra.center.app.openapi_md`) and kept in step."""

from __future__ import annotations

from pathlib import Path

import pytest

from konorkestra.center.app.openapi import document
from konorkestra.center.app.openapi_md import API_MD, BEGIN, END, REGENERATE, main, render, splice


def test_the_committed_api_md_is_what_the_document_generates() -> None:
    current = API_MD.read_text(encoding="utf-8")
    assert splice(current, render(document())) == current, (
        f"{API_MD} is out of date with /v1/openapi.json: run `.venv/bin/{REGENERATE}`"
        " and commit docs/reference/api.md"
    )


def test_every_documented_route_and_schema_is_in_the_generated_text() -> None:
    doc, text = document(), render(document())
    for path, methods in doc["paths"].items():
        for method in methods:
            assert f"| {method.upper()} | `{path}" in text, (method, path)
    for name in doc["components"]["schemas"]:
        assert f"#### schema: {name}\n" in text, name


def test_check_fails_on_a_stale_file_and_passes_once_regenerated(tmp_path: Path) -> None:
    page = tmp_path / "api.md"
    page.write_text(f"# API\n\nprose kept\n\n{BEGIN}\nold table\n{END}\n\nmore prose\n")
    assert main(["--check", "--file", str(page)]) == 1
    assert main(["--file", str(page)]) == 0
    assert main(["--check", "--file", str(page)]) == 0
    text = page.read_text()
    assert text.startswith("# API\n\nprose kept\n\n") and text.endswith(f"{END}\n\nmore prose\n")
    assert "old table" not in text and "| GET | `/v1/agent/stream" in text


def test_a_page_without_the_markers_is_refused() -> None:
    with pytest.raises(ValueError, match="markers"):
        splice("# API\n", "generated\n")
