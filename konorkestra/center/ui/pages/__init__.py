"""The dashboard's pages, one module each; each exposes ``routes()`` (see ``ui/routes.py``)."""
