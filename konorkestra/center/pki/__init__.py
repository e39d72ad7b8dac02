"""The pki wing: the Center's issuing CA, TLS context and client-certificate identity.

``certs`` (pins, SANs, CSR checks; pure), ``ca`` (the ``CertificateAuthority``),
``servercert`` (the server certificate), ``tlscontext`` (``CenterTLS``, the SSL
context), ``identity`` (which node a request is from), ``uvicornhook`` (the H11
protocol hook and ``CenterServer``), ``selftest`` (the start-up self-test),
``routes`` (``/v1/tls/self-test``).
"""
