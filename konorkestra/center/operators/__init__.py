"""The operators wing: operator API tokens, roles, bearer auth, and their routes.

``apitokens`` (API tokens and ``Role``; join tokens are ``nodes.jointokens``),
``auth`` (``require(request, role)``), ``routes`` (``/v1/tokens``, ``/v1/audit``).
"""
