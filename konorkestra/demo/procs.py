"""Real child processes for the demo, the end-to-end tests and the benchmark.

Example::

    app = Proc("app", [sys.executable, "app.py"], log=tmp / "app.log", capture=True).start()
    line = app.wait_line(r"^applied ", timeout=10)       # a LogLine with its arrival time
    print(app.tail(5))                                  # the last lines of its log
    app.stop()

Invariants:

* Every wait is a condition with a deadline: :func:`wait_until` and
  :meth:`Proc.wait_line` raise :class:`WaitTimeout` naming what was awaited,
  and fail at once (:class:`ProcessDied`) when a watched process exits.
* A process's output always goes to its log file; with ``capture=True`` a
  reader thread also keeps each line with the monotonic time it arrived, which
  is how push-to-app latency is measured (one clock, one host).
* :meth:`Proc.stop` sends SIGTERM, then SIGINT, then SIGKILL to the process group; it
  never touches a process it did not start, and is idempotent.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

T = TypeVar("T")


def default_sigint() -> None:
    """In a child before it execs: SIGINT back to its default, as a foreground shell does.

    A process started in the background by a non-interactive shell (a CI job's ``cmd &``)
    inherits SIGINT *ignored*, and Python then installs no KeyboardInterrupt handler:
    :meth:`Proc.stop`'s SIGINT (uvicorn's force quit) and a test's Ctrl-C would do nothing.
    """
    signal.signal(signal.SIGINT, signal.SIG_DFL)


class DemoError(Exception):
    """A step of the demo (or of a test built on it) failed; the message says how."""


class WaitTimeout(DemoError):
    """A condition did not become true before its deadline."""


class ProcessDied(DemoError):
    """A process that should be running has exited."""

    def __init__(self, proc: Proc) -> None:
        super().__init__(f"{proc.name} exited with status {proc.returncode}")
        self.proc = proc


def tool(name: str) -> list[str]:
    """The argv prefix of a console script of this installation (``konorkestra``, ``konorctl``)."""
    beside = Path(sys.executable).parent / name
    if beside.exists():
        return [str(beside)]
    found = shutil.which(name)
    if found:
        return [found]
    module = {"konorkestra": "konorkestra.cli.daemon", "konorctl": "konorkestra.cli.konorctl"}
    return [sys.executable, "-c", f"from {module[name]} import main; main()"]


@dataclass(frozen=True)
class LogLine:
    """One line of a captured process's output and when it arrived (``time.monotonic``)."""

    at: float
    text: str


class Proc:
    """One child process, its log file and (optionally) its captured lines."""

    def __init__(
        self,
        name: str,
        argv: Sequence[str],
        *,
        log: Path,
        env: Mapping[str, str] | None = None,
        cwd: Path | None = None,
        capture: bool = False,
    ) -> None:
        self.name, self.argv, self.log = name, list(argv), log
        self.env = dict(env) if env is not None else dict(os.environ)
        self.cwd, self.capture = cwd, capture
        self.popen: subprocess.Popen[bytes] | None = None
        self.lines: list[LogLine] = []
        self._cond = threading.Condition()
        self._reader: threading.Thread | None = None

    @property
    def pid(self) -> int:
        assert self.popen is not None, f"{self.name} was never started"
        return self.popen.pid

    @property
    def returncode(self) -> int | None:
        return None if self.popen is None else self.popen.poll()

    @property
    def alive(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    def start(self) -> Proc:
        self.log.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log, "ab") as out:
            self.popen = subprocess.Popen(
                self.argv,
                stdout=subprocess.PIPE if self.capture else out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=self.env,
                cwd=self.cwd,
                start_new_session=True,  # Ctrl-C in the terminal reaches us, not the children
                preexec_fn=default_sigint,
            )
        if self.capture:
            self._reader = threading.Thread(target=self._read, name=f"{self.name}-out", daemon=True)
            self._reader.start()
        return self

    def _read(self) -> None:
        assert self.popen is not None and self.popen.stdout is not None
        with open(self.log, "ab") as out:
            for raw in self.popen.stdout:
                at = time.monotonic()
                out.write(raw)
                out.flush()
                with self._cond:
                    self.lines.append(LogLine(at, raw.decode("utf-8", "replace").rstrip("\n")))
                    self._cond.notify_all()
        with self._cond:
            self._cond.notify_all()

    def check(self) -> None:
        """Raise :class:`ProcessDied` if the process has exited."""
        if self.popen is not None and self.popen.poll() is not None:
            raise ProcessDied(self)

    def wait_line(
        self, pattern: str, *, timeout: float, start: int = 0, what: str | None = None
    ) -> tuple[int, LogLine]:
        """The first captured line from index ``start`` on matching ``pattern`` (``re.search``)."""
        regex = re.compile(pattern)
        deadline = time.monotonic() + timeout
        with self._cond:
            index = start
            while True:
                while index < len(self.lines):
                    if regex.search(self.lines[index].text):
                        return index, self.lines[index]
                    index += 1
                if self.popen is not None and self.popen.poll() is not None:
                    raise ProcessDied(self)
                left = deadline - time.monotonic()
                if left <= 0:
                    raise WaitTimeout(
                        f"timed out after {timeout:g}s waiting for {what or pattern!r} "
                        f"in the output of {self.name}"
                    )
                self._cond.wait(min(left, 0.2))

    def output(self) -> str:
        try:
            return self.log.read_text(errors="replace")
        except OSError:
            return ""

    def tail(self, lines: int = 15) -> str:
        return "\n".join(self.output().splitlines()[-lines:])

    def stop(self, timeout: float = 10.0, *, grace: float = 2.0) -> None:
        """SIGTERM; after ``grace`` s SIGINT; after ``timeout`` s SIGKILL (idempotent).

        The SIGINT is uvicorn's "force quit" for a server that still waits on
        in-flight requests (a parked long-poll) after the first signal.
        """
        if self.popen is None:
            return
        for sig, wait in ((signal.SIGTERM, grace), (signal.SIGINT, timeout), (signal.SIGKILL, 5)):
            if self.popen.poll() is not None:
                break
            self._signal(sig)
            try:
                self.popen.wait(timeout=wait)
            except subprocess.TimeoutExpired:
                continue
        if self._reader is not None:
            self._reader.join(timeout=2.0)

    def _signal(self, sig: signal.Signals) -> None:
        assert self.popen is not None
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.popen.pid, sig)  # our own session: the child and its children


def wait_until(
    probe: Callable[[], T | None],
    *,
    timeout: float,
    what: str,
    watch: Iterable[Proc] = (),
    interval: float = 0.05,
) -> T:
    """Call ``probe`` until it returns something truthy; :class:`WaitTimeout` after ``timeout``.

    Raises :class:`ProcessDied` as soon as one of ``watch`` has exited.
    """
    procs = list(watch)
    deadline = time.monotonic() + timeout
    while True:
        for proc in procs:
            proc.check()
        value = probe()
        if value:
            return value
        if time.monotonic() > deadline:
            raise WaitTimeout(f"timed out after {timeout:g}s waiting for {what}")
        time.sleep(interval)
