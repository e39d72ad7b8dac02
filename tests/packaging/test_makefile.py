"""The Makefile's build output stays readable in a CI log (issue 18, "quiet, honest set-up").

Before: ``mvn -q`` printed nothing but the colour reset codes of Debian's Maven 3.8 into
``make test``'s log, with no Surefire summary; the Makefile named Chromium while no suite
used it. These read the Makefile itself, so a change that brings either back fails here.
"""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _mvn_command() -> str:
    text = (ROOT / "Makefile").read_text(encoding="utf-8")
    match = re.search(r"^MVN\s*:=\s*((?:.*\\\n)*.*)$", text, re.MULTILINE)
    assert match, "the Makefile defines MVN"
    return match.group(1).replace("\\\n", " ")


def test_maven_runs_without_colour_or_progress_and_keeps_the_surefire_summary() -> None:
    mvn = _mvn_command()
    assert "-Dstyle.color=never" in mvn and "-Djansi.noreset=true" in mvn  # no escape codes
    assert "-ntp" in mvn or "--no-transfer-progress" in mvn  # no download progress
    assert not re.search(r"(^|\s)-q(\s|$)", mvn)  # -q would hide "Tests run: N, Failures: 0"
    assert "surefire=info" in mvn


def test_the_tools_the_makefile_names_are_ones_a_suite_uses() -> None:
    text = (ROOT / "Makefile").read_text(encoding="utf-8").lower()
    if "chromium" in text:
        browser = (ROOT / "tests" / "helpers" / "browser.py").read_text(encoding="utf-8")
        assert "/usr/bin/chromium" in browser
    if "systemd-analyze" in text:
        assert (ROOT / "tests" / "packaging" / "test_systemd_units.py").exists()
