"""The Agent: pulls verified Releases, stores them crash-safely and serves them locally."""
