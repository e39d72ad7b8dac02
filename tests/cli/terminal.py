"""A real process on a real pseudo-terminal, for what ``konorctl`` does on a terminal.

Example::

    with Terminal([*tool("konorctl"), "groups", "--watch"], env, columns=120) as term:
        term.read_until("checkout", timeout=20)
        term.proc.send_signal(signal.SIGINT)
        assert term.wait(timeout=20) == 0
    term.text            # everything it printed, styles stripped

The window size is set with ``TIOCSWINSZ`` before the process starts, so it
sees a terminal ``columns`` wide exactly as in a shell; reads wait on the pty
with a deadline (``select``), never a sleep.
"""

from __future__ import annotations

import fcntl
import os
import pty
import re
import select
import struct
import subprocess
import termios
import time
from collections.abc import Mapping, Sequence
from types import TracebackType

from konorkestra.demo.procs import default_sigint

_STYLE = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


class Terminal:
    def __init__(self, argv: Sequence[str], env: Mapping[str, str], *, columns: int) -> None:
        self._main, child = pty.openpty()
        fcntl.ioctl(child, termios.TIOCSWINSZ, struct.pack("HHHH", 50, columns, 0, 0))
        clean = {k: v for k, v in env.items() if k not in ("COLUMNS", "LINES")}
        clean["TERM"] = "xterm"
        self.proc = subprocess.Popen(
            list(argv), stdout=child, stderr=child, stdin=subprocess.DEVNULL, env=clean,
            preexec_fn=default_sigint,  # Ctrl-C works even if this run inherited it ignored
        )  # fmt: skip
        os.close(child)
        self._raw = b""
        self._closed = False

    @property
    def text(self) -> str:
        """Everything read so far, CRLF as LF, escape sequences (styles, cursor) removed."""
        return _STYLE.sub("", self._raw.decode(errors="replace").replace("\r\n", "\n"))

    def _read(self, timeout: float) -> bool:
        """Read what is there within ``timeout``; False once the process closed its end."""
        if self._closed:
            return False
        ready, _, _ = select.select([self._main], [], [], timeout)
        if not ready:
            return True
        try:
            chunk = os.read(self._main, 65536)
        except OSError:  # EIO: the child's end is closed
            chunk = b""
        if not chunk:
            self._closed = True
            return False
        self._raw += chunk
        return True

    def read_until(self, pattern: str, *, timeout: float) -> str:
        """Read until ``pattern`` (``re.search`` on :attr:`text`) shows up; the text."""
        deadline = time.monotonic() + timeout
        while not re.search(pattern, self.text):
            left = deadline - time.monotonic()
            if left <= 0 or (not self._read(min(left, 0.5)) and not re.search(pattern, self.text)):
                raise AssertionError(f"{pattern!r} never showed up; the terminal:\n{self.text}")
        return self.text

    def wait(self, *, timeout: float) -> int:
        """Read to the end; the exit code."""
        deadline = time.monotonic() + timeout
        while self._read(max(0.0, min(deadline - time.monotonic(), 0.5))):
            if time.monotonic() > deadline:
                raise AssertionError(f"the process did not end; the terminal:\n{self.text}")
        return self.proc.wait(timeout=max(0.1, deadline - time.monotonic()))

    def __enter__(self) -> Terminal:
        return self

    def __exit__(
        self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)
        os.close(self._main)
