"""SDK internals; may change at any time. Import from ``konorkestra.sdk`` instead."""
