"""The Agent: pulls verified Releases, stores them crash-safely and serves them locally."""

from konorkestra.agent.lean import defer_httpx_cli

defer_httpx_cli()  # before any agent module imports httpx (see lean.py)
