"""``konorctl audit export`` / ``konorctl audit verify`` against a real Center process.

The Center ingests the example config repo (commits accepted, Releases signed)
and issues 20 API tokens, so its audit log holds real events over several pages
of the export's ``--page-size 7``. The export is made once with the real
``konorctl``; each tampering test edits a copy and must be refused naming the
event (and line), offline: ``verify`` gets only the file and the trust root.
"""

from __future__ import annotations

import base64
import json
import os
import pty
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from konorkestra.cli.konorctl import cli
from konorkestra.demo import CenterHandle, ConfigRepo, Stack, examples_dir
from konorkestra.demo.procs import tool
from konorkestra.trust.checkpoint import AuditCheckpoint, sign_checkpoint
from konorkestra.trust.keys import Signer

TOKENS = 20
PAGE = "7"


@pytest.fixture(scope="module")
def center(tmp_path_factory: pytest.TempPathFactory) -> Iterator[CenterHandle]:
    root = tmp_path_factory.mktemp("audit")
    repo = ConfigRepo.create(root, seed=examples_dir() / "config-repo")
    repo.push()
    with Stack(root) as stack:
        handle = stack.center(repo.bare)
        handle.wait_commit(repo.head())
        auth = {"Authorization": f"Bearer {handle.admin_token}"}
        for i in range(TOKENS):
            body = {"name": f"auditor-{i}", "role": "viewer"}
            assert handle.http.post("/v1/tokens", json=body, headers=auth).status_code == 201
        yield handle


@pytest.fixture(scope="module")
def root_json(center: CenterHandle, tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("root") / "root.json"
    path.write_bytes(center.http.get("/v1/trust/root").content)
    return path


@pytest.fixture(scope="module")
def exported(center: CenterHandle, tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("export") / "audit.jsonl"
    center.konorctl("audit", "export", "--page-size", PAGE, "-o", str(path))
    return path


def verify(path: Path, root: Path, *extra: str) -> Result:
    return CliRunner().invoke(
        cli, ["audit", "verify", str(path), "--trust-root", str(root), *extra]
    )


def lines(path: Path) -> list[bytes]:
    return path.read_bytes().splitlines(keepends=True)


def write(tmp: Path, parts: list[bytes]) -> Path:
    out = tmp / "edited.jsonl"
    out.write_bytes(b"".join(parts))
    return out


def refused(result: Result, *needles: str) -> str:
    assert result.exit_code == 1, result.output
    assert isinstance(result.exception, SystemExit), result.exception  # no traceback
    assert "Traceback" not in result.output
    for needle in needles:
        assert needle in result.output, result.output
    return result.output


def test_export_follows_every_page_and_verifies_offline(
    center: CenterHandle, exported: Path, root_json: Path
) -> None:
    all_events = center.get("/v1/audit", limit=5000)["events"]
    assert len(all_events) > 3 * int(PAGE)
    rows = [json.loads(line) for line in lines(exported)]
    assert rows[0] == {"export": {"since": None, "until": None, "first_seq": 1,
                                  "first_prev_hash": "sha256:" + "0" * 64}}  # fmt: skip
    events = rows[1:-1]
    head = center.get("/v1/audit", after=len(events), limit=5000)["events"]
    assert events == all_events[: len(events)] and all(e["seq"] > len(events) for e in head)
    assert {"commit.accepted", "token.created"} <= {e["action"] for e in events}
    assert set(rows[-1]) == {"checkpoint"}
    real = center.konorctl("audit", "verify", str(exported), "--trust-root", str(root_json))
    assert real.stdout.startswith(f"audit export verified: {len(events)} events (1-{len(events)})")


def test_flipping_any_byte_of_an_event_is_refused_naming_it(
    exported: Path, root_json: Path, tmp_path: Path
) -> None:
    parts = lines(exported)
    at = 5  # line 6: event 5
    for i in range(len(parts[at])):
        bad = bytearray(parts[at])
        bad[i] ^= 0x01
        out = refused(
            verify(write(tmp_path, [*parts[:at], bytes(bad), *parts[at + 1 :]]), root_json)
        )
        assert "(line 6)" in out and "event " in out, (i, out)


def test_dropping_an_event_is_refused_naming_the_gap(
    exported: Path, root_json: Path, tmp_path: Path
) -> None:
    parts = lines(exported)
    refused(verify(write(tmp_path, [*parts[:4], *parts[5:]]), root_json),
            "event 5 (line 5)", "expected event 4")  # fmt: skip


def test_dropping_the_last_event_or_the_checkpoint_is_refused(
    exported: Path, root_json: Path, tmp_path: Path
) -> None:
    parts = lines(exported)
    last = len(parts) - 2  # the last event's seq == its line - 1
    refused(verify(write(tmp_path, [*parts[:-2], parts[-1]]), root_json),
            f"event {last - 1}", "checkpoint vouches for event")  # fmt: skip
    refused(verify(write(tmp_path, parts[:-1]), root_json), f"event {last}", "no checkpoint")


def test_reordering_two_events_is_refused(exported: Path, root_json: Path, tmp_path: Path) -> None:
    parts = lines(exported)
    swapped = [*parts[:6], parts[7], parts[6], *parts[8:]]
    refused(verify(write(tmp_path, swapped), root_json), "event 7 (line 7)", "expected event 6")


def test_a_checkpoint_signed_by_another_key_is_refused(
    exported: Path, root_json: Path, tmp_path: Path
) -> None:
    parts = lines(exported)
    bundle = json.loads(parts[-1])["checkpoint"]
    payload = base64.b64decode(bundle["dsseEnvelope"]["payload"])
    forged = sign_checkpoint(AuditCheckpoint.from_payload(payload), [Signer.generate()])
    line = json.dumps({"checkpoint": json.loads(forged)}).encode() + b"\n"
    last = len(parts) - 2
    refused(verify(write(tmp_path, [*parts[:-1], line]), root_json),
            f"event {last} (line {last + 1})", f"checkpoint after it (line {last + 2}) is refused",
            "not a timestamp key")  # fmt: skip


def test_ranges_by_seq_and_time_verify_and_prove_their_ends(
    center: CenterHandle, root_json: Path, tmp_path: Path
) -> None:
    events: list[dict[str, Any]] = center.get("/v1/audit", limit=5000)["events"]
    part = tmp_path / "part.jsonl"
    center.konorctl("audit", "export", "--since", "3", "--until", "12", "--page-size", "4",
                    "-o", str(part))  # fmt: skip
    rows = [json.loads(line) for line in lines(part)]
    assert [e["seq"] for e in rows[1:-1]] == list(range(4, 13))
    assert rows[0]["export"]["first_prev_hash"] == events[2]["hash"]
    assert verify(part, root_json).output.startswith("audit export verified: 9 events (4-12)")
    parts = lines(part)
    refused(verify(write(tmp_path, [*parts[:-2], parts[-1]]), root_json), "event 11")
    since = events[5]["at"]
    timed = tmp_path / "timed.jsonl"
    center.konorctl("audit", "export", "--since", since, "-o", str(timed))
    first = json.loads(lines(timed)[1])
    assert first["at"] >= since and verify(timed, root_json).exit_code == 0


def test_csv_export_with_its_sidecar_verifies_and_tampering_is_refused(
    center: CenterHandle, root_json: Path, tmp_path: Path
) -> None:
    path = tmp_path / "audit.csv"
    center.konorctl("audit", "export", "--format", "csv", "--page-size", PAGE, "-o", str(path))
    side = tmp_path / "audit.csv.checkpoint.json"
    assert set(json.loads(side.read_text())) == {"export", "checkpoint"}
    text = path.read_text()
    assert text.startswith("seq,at,actor,action,details,prev_hash,hash\n")
    assert verify(path, root_json).exit_code == 0
    rows = text.splitlines(keepends=True)
    path.write_text("".join([*rows[:3], rows[3].replace("T", "t", 1), *rows[4:]]))
    refused(verify(path, root_json), "event 3 (line 4)", "does not match its hash")
    path.write_text("".join([*rows[:3], rows[3].replace(",", ";", 1), *rows[4:]]))
    refused(verify(path, root_json), "event 3 (line 4)", "must have 7 fields")
    path.write_text("".join(rows))
    side.unlink()
    refused(verify(path, root_json), "no checkpoint")


def test_usage_errors_exit_2_and_garbage_exits_1_without_a_traceback(
    exported: Path, root_json: Path, tmp_path: Path
) -> None:
    assert verify(tmp_path / "missing.jsonl", root_json).exit_code == 2
    not_root = tmp_path / "root.json"
    not_root.write_text("{}")
    assert "not a trust root" in verify(exported, not_root).output
    assert verify(exported, not_root).exit_code == 2
    garbage = tmp_path / "garbage.jsonl"
    garbage.write_bytes(b"{\xff\n")
    refused(verify(garbage, root_json), "line 1", "not an audit export")
    usage = CliRunner().invoke(cli, ["audit", "export", "--format", "csv", "-o", "-"])
    assert usage.exit_code == 2 and "needs -o FILE" in usage.output
    bad_bound = CliRunner().invoke(cli, ["audit", "export", "--since", "yesterday", "-o", "-"])
    assert bad_bound.exit_code == 2 and "neither a seq nor an RFC 3339 time" in bad_bound.output


def test_a_time_until_ends_the_range_and_content_after_the_checkpoint_is_refused(
    center: CenterHandle, root_json: Path, tmp_path: Path
) -> None:
    events: list[dict[str, Any]] = center.get("/v1/audit", limit=5000)["events"]
    until = events[-4]["at"]
    path = tmp_path / "until.jsonl"
    center.konorctl("audit", "export", "--until", until, "-o", str(path))
    got = [json.loads(line) for line in lines(path)][1:-1]
    assert got == [e for e in events if e["at"] <= until][: len(got)]
    assert got[-1]["at"] <= until and verify(path, root_json).exit_code == 0
    parts = lines(path)
    refused(verify(write(tmp_path, [*parts, parts[1]]), root_json), "content after the checkpoint")
    header = json.loads(parts[0])
    header["export"]["first_seq"] = 2
    edited = [json.dumps(header).encode() + b"\n", *parts[1:]]
    refused(verify(write(tmp_path, edited), root_json), "range starts at event 1, the header at 2")


def test_a_failed_export_leaves_no_file(center: CenterHandle, tmp_path: Path) -> None:
    path = tmp_path / "denied.jsonl"
    proc = center.konorctl("audit", "export", "--token", "kt_nope.x", "-o", str(path), check=False)
    assert (proc.returncode == 1 and "401" in proc.stderr) or "unauth" in proc.stderr.lower()
    assert list(tmp_path.iterdir()) == []


def test_progress_goes_to_stderr_when_it_is_a_terminal(
    center: CenterHandle, root_json: Path, tmp_path: Path
) -> None:
    path = tmp_path / "tty.jsonl"
    master, slave = pty.openpty()
    env = {**os.environ, **center.konorctl_env(), "COLUMNS": "100"}
    argv = [*tool("konorctl"), "audit", "export", "--page-size", "3", "-o", str(path)]
    proc = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=slave)
    os.close(slave)
    seen = bytearray()
    while True:
        try:
            chunk = os.read(master, 65536)
        except OSError:  # EIO: the child closed its end
            break
        if not chunk:
            break
        seen += chunk
    assert proc.wait(timeout=60) == 0
    os.close(master)
    assert b"exporting audit events" in seen and b"exported" in seen
    assert verify(path, root_json).exit_code == 0


def test_stdout_export_of_an_empty_range_still_carries_a_checkpoint(
    center: CenterHandle, root_json: Path, tmp_path: Path
) -> None:
    proc = center.konorctl("audit", "export", "--since", "999999", "-o", "-")
    rows = [json.loads(line) for line in proc.stdout.splitlines()]
    assert rows[0] == {"export": {"since": "999999", "until": None, "first_seq": None,
                                  "first_prev_hash": None}}  # fmt: skip
    assert len(rows) == 2 and set(rows[1]) == {"checkpoint"}
    path = tmp_path / "empty.jsonl"
    path.write_text(proc.stdout)
    assert verify(path, root_json).output.startswith("audit export verified: no events")
