"""``konorkestra demo --keep`` as a user runs it: a subprocess that must pass, say so, keep the
stack up with a dashboard one can log in to, and clean up when told to stop (SIGTERM).

The demo tells the progressive-rollout story (issue 14); this test holds it to
its key facts as printed: the push reaches the canary node only, the rollout
waits for an approval that the demo gives, the bad Release fails in the
canary's app and is rolled back without an operator, and the Center's record
of every process shows that no app but the canary's ever saw the bad Release.
With ``--keep`` it prints the dashboard's URL and an operator token, which logs
in to that dashboard over the Center's TLS (checked against the Center's own CA).
"""

from __future__ import annotations

import os
import re
import signal
import ssl
import subprocess
import threading
import time
from pathlib import Path

import httpx
import pytest

from konorkestra.demo.procs import default_sigint, tool
from tests.helpers.poll import wait_for

pytestmark = pytest.mark.slow

STEPS = 11
DASHBOARD = re.compile(
    r"^Dashboard +(https://127\.0\.0\.1:\d+/ui/) +log in with this operator API token "
    r"\(shown once\): (\S+)\n +its TLS certificate comes from the Center's own CA \((\S+)\)",
    re.M,
)
ROW = re.compile(
    r"^    (node-\d)( \(canary\))?\s+(\d+)\s+checkout-app\s+(\S+)\s+(\S+)\s+(\S+)\s+(\S+)$", re.M
)


def log_in(url: str, token: str, ca: str) -> str:
    """Log in to the dashboard at ``url`` with ``token`` as a browser would; the overview."""
    verify = ssl.create_default_context(cafile=ca)
    with httpx.Client(base_url=url, verify=verify, timeout=30) as http:
        nonce = re.search(r'name="nonce" value="([^"]+)"', http.get("login").text)
        assert nonce, "no log-in form"
        answer = http.post("login", data={"nonce": nonce.group(1), "token": token, "next": "/ui/"})
        assert (answer.status_code, answer.headers.get("location")) == (303, "/ui/"), answer.text
        overview = http.get("")
        assert overview.status_code == 200, overview.text
        return overview.text


def test_demo_tells_the_rollout_story_keeps_a_dashboard_up_and_cleans_up(tmp_path: Path) -> None:
    env = {**os.environ, "COLUMNS": "140", "NO_COLOR": "1"}
    started = time.monotonic()
    with (tmp_path / "stderr").open("w") as stderr:
        argv = [*tool("konorkestra"), "demo", "--keep"]
        proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=stderr, text=True, env=env,
                                preexec_fn=default_sigint)  # fmt: skip
    lines: list[str] = []

    def read() -> None:
        for line in proc.stdout or ():
            lines.append(line)

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        kept = wait_for(
            lambda: DASHBOARD.search("".join(lines)) or proc.poll() is not None,
            timeout=180, interval=0.1, what="the demo to keep running with a dashboard",
        )  # fmt: skip
        took = time.monotonic() - started
        assert isinstance(kept, re.Match), "".join(lines)
        assert "demo-dashboard" in log_in(*kept.groups()), "the overview names the token's user"
    finally:
        proc.send_signal(signal.SIGINT)  # Ctrl-C: how --keep is told to stop (and cleans up)
        proc.wait(timeout=60)
        reader.join(timeout=10)
    out, err = "".join(lines), (tmp_path / "stderr").read_text()
    assert proc.returncode == 0, out + err
    assert took < 90, f"the demo took {took:.1f}s"
    for n in range(1, STEPS + 1):
        assert re.search(rf"^✓ {n}/{STEPS} ", out, re.M), f"step {n} not passed:\n{out}"
    assert not re.search(r"^✗ ", out, re.M), out  # no step failed (✗ also marks a guard)
    served = re.search(r"serving (https://127\.0\.0\.1:\d+) \(pid \d+, TLS on\)", out)
    assert served, out
    assert f"dashboard {served.group(1)}/ui/" in out
    assert kept.group(1) == f"{served.group(1)}/ui/"
    assert "The dashboard was at" not in out  # that line is for runs without --keep
    assert "bakes shortened to 3 s for the demo; examples/config-repo uses 5m/10m" in out

    # the canary: one node of five takes checkout-2, the others stay on checkout-1
    found = re.search(r"5 % of 5 nodes = 1 node, the canary: (node-\d)", out)
    assert found, out
    canary = found.group(1)
    assert re.search(rf"{canary}'s app \(pid \d+\) applied checkout-2: "
                     r"checkout-api\.timeout_ms = 650", out)  # fmt: skip
    latency = re.search(r"push → canary app: (\d+) ms", out)
    assert latency and int(latency.group(1)) < 10_000
    assert re.search(r": agents still on checkout-1, apps silent, still on timeout_ms = 400", out)

    # the approval: the rollout holds, the demo approves with konorctl, twice
    assert "4 nodes still on checkout-1: the rollout holds until an operator approves" in out
    assert out.count("$ konorctl rollout approve checkout --reason") == 2
    assert out.count("approved the rollout of checkout: checkout-2-") == 2
    assert "5/5 nodes on it, their apps applied it" in out
    assert "rollout: completed" in out

    # an invalid commit is refused before any rollout
    assert re.search(r"│ \w{12} │ rejected │", out)  # konorctl commits
    assert "timeout_ms: 5 is less than the minimum of 10 [data-schema]" in out

    # the bad Release: the same canary fails its reload, the Center rolls back by itself
    assert f"{canary}'s app (the same canary): failed checkout-3: BadReload" in out
    assert "audit guard.breached by center:rollout: failed_acks 1 > 0" in out
    assert "audit rollout.rolled_back by center:rollout (no operator): a new release, " \
           "checkout-4" in out  # fmt: skip
    assert f"the Center told only {canary} to take checkout-3" in out
    assert re.search(r"checkout\s+checkout-3-\w+\s+rolled back", out)  # konorctl rollouts

    # who saw what: the canary's app saw checkout-3 (failed) then the rollback; no other app
    assert re.search(r"checkout-3 \(bad\)\s+checkout-4 \(rollback\)", out)
    rows = {m.group(1): m.groups() for m in ROW.finditer(out)}
    assert sorted(rows) == [f"node-{i}" for i in range(1, 6)], out
    for node, (_, mark, _pid, _first, good, bad, rollback) in rows.items():
        assert good == "applied", (node, out)
        if node == canary:
            assert (mark, bad, rollback) == (" (canary)", "failed", "applied"), out
        else:
            assert (mark, bad, rollback) == (None, "-", "-"), out
    assert "checkout-3 reached 1 app of 5" in out
    assert re.search(r"saw checkout-4-\w+, ack applied", out)  # konorctl nodes show

    assert "✓ Demo passed" in out
    assert "stopped every process and removed the temporary directory" in out
