"""Konorkestra: GitOps configuration orchestration.

Git is the source of truth; the Center validates every commit and signs it into
immutable Releases; an Agent on every node verifies, commits crash-safely and
serves them to applications over a Unix socket.
"""

__version__ = "0.1.0"
