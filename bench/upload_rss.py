"""How much does one hostile upload grow the Center? (issue 12, finding 3)

Usage::

    .venv/bin/python bench/upload_rss.py [--mb 300] [--dir PATH]

Starts a real ``konorkestra center`` (TLS, an empty bare repository), reads its
resident set size from ``/proc/<pid>/status``, then sends unauthenticated
``POST /v1/enroll`` uploads of ``--mb`` MiB streamed from a generator: one with
a ``Content-Length`` header, one without (chunked). Prints the RSS before each,
its peak during the upload (the kernel's ``VmHWM``, reset first) and the growth,
the RSS after, how many bytes the client got to send before the Center hung
up, and how long that took.

Target: peak growth < 10 MiB per upload (before issue 12 one 300 MB upload grew the
Center by 545 MiB: the body was read whole before the 1 MiB limit was checked).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.helpers.center_proc import CenterProcess
from tests.helpers.git import make_bare
from tests.helpers.upload import PeakRss, client, rss_bytes, upload

MIB = 1 << 20


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mb", type=int, default=300, help="upload size in MiB")
    parser.add_argument("--dir", type=Path, default=None, help="work directory (default: temp)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = args.dir or Path(tmp)
        bare = make_bare(work / "config.git")
        with CenterProcess(repo=bare, data=work / "data", args=("--log-level", "warning")) as c:
            assert c.proc is not None
            pid, url = c.proc.pid, f"{c.url}/v1/enroll"
            with client(c.verify) as http:  # warm up: TLS, the route, the JSON error path
                http.post(url, content=b"{}")
            worst = 0
            for declare in (True, False):
                started = time.perf_counter()
                with PeakRss(pid) as rss:
                    result = upload(url, total=args.mb * MIB, declare_length=declare,
                                    verify=c.verify)  # fmt: skip
                    with client(c.verify) as http:
                        assert http.get(f"{c.url}/readyz").status_code == 200
                took = time.perf_counter() - started
                after = rss_bytes(pid)
                worst = max(worst, rss.growth)
                kind = "Content-Length" if declare else "chunked"
                print(
                    f"{kind:>14}: RSS before {rss.before / MIB:6.1f} MiB, "
                    f"peak {rss.peak / MIB:6.1f}"
                    f" (growth {rss.growth / MIB:+6.1f} MiB), after {after / MIB:6.1f} MiB | "
                    f"client sent {result.sent / MIB:5.1f} of {args.mb} MiB in {took:5.2f} s, "
                    f"status {result.status} {result.error or ''}"
                )
            print(f"worst growth {worst / MIB:.1f} MiB (target < 10 MiB)")
            return 0 if worst < 10 * MIB else 1


if __name__ == "__main__":
    sys.exit(main())
