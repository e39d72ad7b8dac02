"""The vendored front-end files are the published ones, and the pages load only them."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

from konorkestra.center.ui.web import HERE

STATIC = HERE / "static"
ROW = re.compile(r"^\| `([^`]+)` \|.*\| `([0-9a-f]{64})` \|$", re.MULTILINE)


def test_each_vendored_file_has_the_hash_its_table_row_names() -> None:
    rows = dict(ROW.findall((STATIC / "VENDORED.md").read_text()))
    assert set(rows) == {"htmx-2.0.11.min.js", "htmx-ext-sse-2.2.4.min.js"}
    for name, digest in rows.items():
        assert hashlib.sha256((STATIC / name).read_bytes()).hexdigest() == digest, name


def test_the_pages_load_scripts_and_styles_from_the_static_folder_only() -> None:
    base = (HERE / "templates" / "base.html").read_text()
    sources = re.findall(r'(?:src|href)="(/ui/static/[^"]+)"', base)
    assert sources, base
    for source in sources:
        assert (STATIC / Path(source).name).is_file(), source
    assert not re.search(r'(?:src|href)="(?:https?:)?//', base)  # nothing from elsewhere
