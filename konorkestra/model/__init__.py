"""Pure domain objects and canonical serialization. No I/O lives here."""
