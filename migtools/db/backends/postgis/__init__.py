"""``ENGINE: "migtools.db.backends.postgis"``: GeoDjango's PostGIS backend with the migtools
schema editor (the pattern for any project with its own PostgreSQL-based backend)."""
