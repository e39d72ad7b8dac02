"""``konorctl verify``: accepts a good bundle, refuses each attack with one line."""

from __future__ import annotations

import base64
import datetime as dt
import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from click.testing import CliRunner

from konorkestra.cli.konorctl import cli
from konorkestra.model.canonical import canonical_bytes, digest_of
from konorkestra.trust import Signer
from konorkestra.trust.dsse import INTOTO_PAYLOAD_TYPE, encode_bundle, sign_envelope
from konorkestra.trust.root import build_root_document, sign_root

if TYPE_CHECKING:
    from tests.trust.conftest import World

AT = ["--at", "2025-06-01T12:00:00Z"]


@pytest.fixture
def files(world: World, tmp_path: Path) -> dict[str, Path]:
    root = tmp_path / "root.json"
    root.write_bytes(world.root_bytes)
    bundle = tmp_path / "release.json"
    bundle.write_bytes(world.bundle(sequence=2))
    blobs = tmp_path / "blobs"
    blobs.mkdir()
    for i, (digest, data) in enumerate(world.blob_map().items()):
        (blobs / (digest if i else digest[7:])).write_bytes(data)  # both naming styles
    return {"root": root, "bundle": bundle, "blobs": blobs, "dir": tmp_path}


def run(*args: str | Path) -> Any:
    return CliRunner().invoke(cli, ["verify", *map(str, args)])


def test_good_bundle_prints_who_signed_what(world: World, files: dict[str, Path]) -> None:
    result = run(files["bundle"], "--trust-root", files["root"], "--blobs", files["blobs"], *AT)
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert out.startswith("verified release checkout-2-")
    assert f"signed by   {world.release_key.keyid} (release)" in out
    assert "checkout-api@3" in out and "checkout-flags@1" in out
    assert out.count("blob ok") == 2
    assert "Ana Lima <ana@example.org>" in out and "3f2a9c0d1e7b4a55" in out
    assert "sequence    2 (previous: checkout-1-" in out


def test_without_blobs_says_subjects_not_checked(files: dict[str, Path]) -> None:
    result = run(files["bundle"], "--trust-root", files["root"], *AT)
    assert result.exit_code == 0
    assert result.stdout.count("blob not checked (no --blobs)") == 2


def test_json_output(world: World, files: dict[str, Path]) -> None:
    result = run(files["bundle"], "--trust-root", files["root"], "-o", "json", *AT)
    doc = json.loads(result.stdout)
    assert doc["ok"] and doc["group"] == "checkout" and doc["sequence"] == 2
    assert doc["signers"] == [{"keyid": world.release_key.keyid, "role": "release"}]
    assert doc["source"]["commit"] == world.statement().source.commit


def _flip_payload(world: World) -> bytes:
    doc = json.loads(world.bundle())
    payload = bytearray(base64.b64decode(doc["dsseEnvelope"]["payload"]))
    payload[50] ^= 1
    doc["dsseEnvelope"]["payload"] = base64.b64encode(bytes(payload)).decode()
    return canonical_bytes(doc)


def _wrong_predicate(world: World) -> bytes:
    doc = world.statement().to_json() | {"predicateType": "https://example.org/other/v1"}
    env = sign_envelope(INTOTO_PAYLOAD_TYPE, canonical_bytes(doc), [world.release_key])
    return encode_bundle(env)


CASES: dict[str, tuple[Callable[[World], bytes], list[str], str]] = {
    "flipped payload": (_flip_payload, [], "bad_signature"),
    "unknown key": (lambda w: w.bundle(signers=[Signer.generate()]), [], "unknown_key"),
    "wrong predicate": (_wrong_predicate, [], "wrong_predicate_type"),
    "expired": (
        lambda w: w.bundle(ttl=dt.timedelta(hours=1)),
        ["--at", "2025-06-02T00:00:00Z"],
        "expired",
    ),
    "out of scope": (
        lambda w: w.bundle(group="payments"),
        ["--group-scope", "checkout"],
        "out_of_scope",
    ),
    "trailing garbage": (lambda w: w.bundle() + b"x", [], "malformed"),
    "duplicate keys": (
        lambda w: w.bundle().replace(b'{"dsseEnvelope":', b'{"dsseEnvelope":1,"dsseEnvelope":'),
        [],
        "malformed",
    ),
    "oversized": (lambda w: b" " * (300 * 1024), [], "too_large"),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_attack_refused_with_one_line(world: World, files: dict[str, Path], case: str) -> None:
    make, extra, code = CASES[case]
    bad = files["dir"] / "bad.json"
    bad.write_bytes(make(world))
    result = run(bad, "--trust-root", files["root"], *AT, *extra)
    assert result.exit_code == 1, result.output
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("refused: ")
    assert lines[0].endswith(f"({code})")
    assert result.stdout == ""


def test_blob_differs_from_subject(files: dict[str, Path], world: World) -> None:
    victim = next(iter(files["blobs"].iterdir()))
    victim.write_bytes(world.configset_blob("checkout-api", 3, {"timeout_ms": 1}))
    result = run(files["bundle"], "--trust-root", files["root"], "--blobs", files["blobs"], *AT)
    assert result.exit_code == 1
    assert result.stderr.strip().endswith("(subject_mismatch)")


def test_replay_below_high_water_mark(files: dict[str, Path]) -> None:
    marks = files["dir"] / "marks.json"
    marks.write_text(json.dumps({"checkout": {"sequence": 5, "digest": "sha256:" + "a" * 64}}))
    result = run(files["bundle"], "--trust-root", files["root"], "--high-water-marks", marks, *AT)
    assert result.exit_code == 1
    assert result.stderr == "refused: checkout sequence 2 is below the trusted 5 (rollback)\n"


def test_root_chain_with_a_gap(world: World, files: dict[str, Path]) -> None:
    doc = build_root_document(
        version=3,
        expires=world.now + dt.timedelta(days=30),
        root=[k.public_key for k in world.root_keys],
        release=[k.public_key for k in world.release_keys],
        timestamp=[k.public_key for k in world.timestamp_keys],
    )
    v3 = files["dir"] / "root.3.json"
    v3.write_bytes(sign_root(doc, world.root_keys))
    result = run(files["bundle"], "--trust-root", files["root"], "--trust-root", v3, *AT)
    assert result.exit_code == 1
    assert result.stderr.strip().endswith("(root_rotation)")


def test_refusal_as_json(files: dict[str, Path]) -> None:
    result = run(
        files["bundle"], "--trust-root", files["root"], "-o", "json", *AT, "--group-scope", "x"
    )
    assert result.exit_code == 1
    assert json.loads(result.stdout)["code"] == "out_of_scope"


@pytest.mark.parametrize(
    "args",
    [
        ["missing.json", "--trust-root", "{root}"],
        ["{bundle}", "--trust-root", "missing-root.json"],
        ["{bundle}", "--trust-root", "{dir}"],
        ["{bundle}", "--trust-root", "{root}", "--at", "yesterday"],
        ["{bundle}", "--trust-root", "{root}", "--blobs", "nowhere"],
        ["{bundle}"],
    ],
)
def test_usage_errors_exit_2_without_traceback(files: dict[str, Path], args: list[str]) -> None:
    argv = [a.format(**{k: str(v) for k, v in files.items()}) for a in args]
    result = CliRunner().invoke(cli, ["verify", *argv])
    assert result.exit_code == 2, result.output
    assert ("Traceback" not in result.output and result.exception is None) or isinstance(
        result.exception, SystemExit
    )


def test_real_subprocess(files: dict[str, Path]) -> None:
    konorctl = Path(sys.executable).parent / "konorctl"
    ok = subprocess.run(
        [konorctl, "verify", files["bundle"], "--trust-root", files["root"], *AT],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert ok.returncode == 0, ok.stderr
    assert ok.stdout.startswith("verified release checkout-2-")
    data = bytearray(files["bundle"].read_bytes())
    data[-30] ^= 0x01
    bad = files["dir"] / "tampered.json"
    bad.write_bytes(bytes(data))
    refused = subprocess.run(
        [konorctl, "verify", bad, "--trust-root", files["root"], *AT],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert refused.returncode == 1
    assert refused.stderr.startswith("refused: ") and refused.stderr.count("\n") == 1
    unreadable = subprocess.run(
        [konorctl, "verify", files["dir"] / "nope.json", "--trust-root", files["root"]],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert unreadable.returncode == 2
    assert "Traceback" not in unreadable.stderr and "cannot read bundle" in unreadable.stderr


def test_digest_named_blob_files_cover_both_styles(files: dict[str, Path], world: World) -> None:
    names = {p.name for p in files["blobs"].iterdir()}
    assert any(n.startswith("sha256:") for n in names)
    assert any(len(n) == 64 for n in names)
    assert {n.removeprefix("sha256:") for n in names} == {d[7:] for d in world.blob_map()}
    assert digest_of(b"") not in names
