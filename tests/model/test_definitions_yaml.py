"""Property: a ConfigSet's canonical bytes do not depend on how its YAML is written."""

from __future__ import annotations

import io
import json
import random
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st
from ruamel.yaml import YAML

from konorkestra.model.definitions import ConfigSet
from konorkestra.model.types import ConfigSetName
from konorkestra.repo.configsets import build_configset
from konorkestra.repo.loader import parse_file
from konorkestra.repo.sources import SourceError

# Control characters and YAML 1.1 line breaks (NEL, LS, PS) are excluded: a YAML
# emitter may write them raw, which changes the text, not our canonicalization.
chars = st.characters(
    blacklist_categories=("Cs", "Cc"), blacklist_characters="\x85\u2028\u2029\ufeff"
)
keys = st.text(chars, min_size=1, max_size=12)
scalars = (
    st.none()
    | st.booleans()
    | st.integers(-(2**53) + 1, 2**53 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(chars, max_size=20)
)
values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(keys, inner, max_size=4),
    max_leaves=20,
)
data_maps = st.dictionaries(keys, values, max_size=6)


class NoFiles:
    def read(self, path: str) -> bytes:
        raise SourceError("file-missing", path)


def shuffled(value: Any, rng: random.Random) -> Any:
    if isinstance(value, dict):
        items = list(value.items())
        rng.shuffle(items)
        return {k: shuffled(v, rng) for k, v in items}
    if isinstance(value, list):
        return [shuffled(v, rng) for v in value]
    return value


def document(data: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": "konorkestra.io/v1",
        "kind": "ConfigSet",
        "metadata": {"name": "prop", "version": 7, "labels": {"owner": "x"}},
        "spec": {"data": data},
    }


def block_yaml(doc: dict[str, Any], mapping: int, sequence: int, offset: int) -> str:
    yaml = YAML(typ="rt")
    yaml.default_flow_style = False
    yaml.indent(mapping=mapping, sequence=sequence, offset=offset)
    yaml.width = 4096
    out = io.StringIO()
    yaml.dump(doc, out)
    lines = out.getvalue().splitlines()
    # Comments on their own lines and after the top-level keys.
    commented = ["# generated", "---"]
    for line in lines:
        if line and not line.startswith(" ") and line.endswith(":"):
            line += "   # a comment"
        commented.append(line)
    return "\n".join(commented) + "\n"


def flow_yaml(doc: dict[str, Any]) -> str:
    return "# JSON is YAML too\n" + json.dumps(doc) + "\n"


def digest_of_yaml(text: str) -> str:
    definitions, diagnostics = parse_file("prop.yaml", text.encode())
    assert diagnostics == []
    (definition,) = definitions
    built = build_configset(definition, NoFiles())  # type: ignore[arg-type]
    assert built.diagnostics == [] and built.configset is not None
    return built.configset.digest()


@settings(max_examples=150, deadline=None)
@given(
    data=data_maps,
    seed=st.integers(0, 2**32),
    mapping=st.sampled_from([2, 4]),
    offset=st.sampled_from([0, 2]),
)
def test_canonical_bytes_survive_reformatting(
    data: dict[str, Any], seed: int, mapping: int, offset: int
) -> None:
    expected = ConfigSet(ConfigSetName("prop"), 7, data=data).digest()
    reordered = document(shuffled(data, random.Random(seed)))
    renderings = [
        block_yaml(document(data), mapping, mapping + offset, offset),
        block_yaml(reordered, 2, 2, 0),
        flow_yaml(reordered),
    ]
    assert {digest_of_yaml(text) for text in renderings} == {expected}
