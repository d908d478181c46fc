"""``ENGINE: "migtools.db.backends.postgresql"``: Django's PostgreSQL backend with the migtools
schema editor."""
