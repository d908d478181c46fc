"""A project with several databases, routed the way Sentry routes its silos.

Two aliases on one PostgreSQL server: ``default`` (the "cell" silo: Django's contrib apps and
the ``cell`` app) and ``control`` (the ``control`` app, plus ``cell.Region``, routed there by
model). ``RunPython``/``RunSQL`` name their silo in ``hints={"silo": ...}``; dropped tables keep
their silo in the router's ``historical_silo_assignments`` (``historical_db_for``).

Settings: ``tests.multidb.settings`` (database names from ``MULTIDB_PREFIX``). Used by
``tests/test_multidb.py`` and ``example_project/demo.py``.
"""
