"""Test tooling shipped with the source tree; the product never imports it.

* :mod:`konorkestra.testing.fakeagent` — the one fake agent of the Python, Go and
  Java SDK suites and the conformance vectors (``python -m
  konorkestra.testing.fakeagent --help``), with its control protocol.
* :mod:`konorkestra.testing.serverthread` — that fake on a thread, for Python tests.
* :mod:`konorkestra.testing.recording` — the real UDS server, recording requests.
* :mod:`konorkestra.testing.memstate` — the in-memory state it serves.
* :mod:`konorkestra.testing.lineclient` — a bare protocol client for tests and benchmarks.
"""
