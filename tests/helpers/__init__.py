"""Test helpers shared by tests/center and tests/e2e (git repos, Center processes, polling).

Import as ``from tests.helpers import ...``; the conftest files of those test
directories put the repository root on ``sys.path`` first.
"""
