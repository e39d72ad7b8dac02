"""One version everywhere: ``konorkestra/__init__.py`` holds it; the rest must agree.

The Python distribution reads it from there (``pyproject.toml``:
``dynamic = ["version"]``, ``attr = "konorkestra.__version__"``); the Go SDK's
``Version`` (``sdks/go/version.go``), the Maven artifact's ``<version>`` and the
Java SDK's ``VERSION`` (both sent in the socket protocol's hello) are copies this
test compares. To release: change ``__init__.py``, run this test, fix what it names.
"""

from __future__ import annotations

import ast
import re
import tomllib
import xml.etree.ElementTree as ET
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
JAVA_CLIENT = "sdks/java/src/main/java/io/konorkestra/sdk/KonorkestraClient.java"


def python_version() -> str:
    tree = ast.parse((ROOT / "konorkestra" / "__init__.py").read_text())
    for node in tree.body:
        if isinstance(node, ast.Assign) and ast.unparse(node.targets[0]) == "__version__":
            assert isinstance(node.value, ast.Constant) and isinstance(node.value.value, str)
            return node.value.value
    raise AssertionError("konorkestra/__init__.py has no __version__ = '...'")


def one(pattern: str, rel: str) -> str:
    found = re.findall(pattern, (ROOT / rel).read_text(), re.MULTILINE)
    assert len(found) == 1, f"{rel}: expected one match of {pattern!r}, got {found}"
    return str(found[0])


def copies() -> dict[str, str]:
    """Every place that states the version, outside ``__init__.py``."""
    pom = ET.parse(ROOT / "sdks" / "java" / "pom.xml").getroot()
    ns = {"m": "http://maven.apache.org/POM/4.0.0"}
    pom_version = pom.find("m:version", ns)
    assert pom_version is not None and pom_version.text
    return {
        "sdks/go/version.go": one(r'^const Version = "([^"]+)"$', "sdks/go/version.go"),
        "sdks/java/pom.xml <version>": pom_version.text.strip(),
        JAVA_CLIENT: one(r'String VERSION = "([^"]+)";', JAVA_CLIENT),
    }


def mismatches(source: str, found: dict[str, str]) -> list[str]:
    return [f"{where}: {value} (konorkestra/__init__.py: {source})"
            for where, value in sorted(found.items()) if value != source]  # fmt: skip


def test_every_copy_states_the_package_version() -> None:
    source = python_version()
    assert re.fullmatch(r"\d+\.\d+\.\d+([a-z]+\d+)?", source), source
    assert mismatches(source, copies()) == []


def test_a_differing_copy_is_named() -> None:
    found = {**copies(), "sdks/go/version.go": "9.9.9"}
    assert mismatches(python_version(), found) == [
        f"sdks/go/version.go: 9.9.9 (konorkestra/__init__.py: {python_version()})"
    ]


def test_the_distribution_reads_its_version_from_the_package() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert "version" not in project["project"]
    assert "version" in project["project"]["dynamic"]
    dynamic = project["tool"]["setuptools"]["dynamic"]["version"]
    assert dynamic == {"attr": "konorkestra.__version__"}
