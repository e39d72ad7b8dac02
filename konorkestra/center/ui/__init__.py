"""The dashboard: HTML pages at ``/ui/`` over the Center's own store (see ``routes.py``)."""
