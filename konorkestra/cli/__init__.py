"""Command-line interfaces: ``konorctl`` for operators, ``konorkestra`` for daemons."""
