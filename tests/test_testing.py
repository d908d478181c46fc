"""migtools.testing against a real PostgreSQL: TestMigrations, Migrator, snapshots.

The ``ledger`` test app has real migrations: 0003 seeds currencies (a data migration whose rows
must survive migration tests), 0004 adds ``Entry.kind`` (nullable), 0005 backfills it, 0006
makes it NOT NULL, 0007 adds ``Account.closed``.
"""

from __future__ import annotations

import unittest
from collections.abc import Iterator
from typing import Any, ClassVar

import pytest
from django.apps import apps as global_apps
from django.contrib.contenttypes.models import ContentType
from django.db import connections
from django.db.migrations.recorder import MigrationRecorder
from django.db.migrations.state import StateApps
from django.db.models.signals import post_migrate

from migtools.testing import MigrationTestError, Migrator, TestMigrations, history, snapshot, walk

FROM = "0004_entry_kind"
TO = "0005_backfill_entry_kind"
HEAD = ("ledger", "0007_account_closed")


def _at_head(alias: str = "default") -> None:
    """The alias points at its test database, at head, with the seeded currencies."""
    connection = connections[alias]
    assert str(connection.settings_dict["NAME"]).startswith("test_")
    assert HEAD in MigrationRecorder(connection).applied_migrations()
    currency = global_apps.get_model("ledger", "Currency")
    assert sorted(currency.objects.using(alias).values_list("code", flat=True)) == ["EUR", "USD"]
    with connection.cursor() as cursor:
        columns = connection.introspection.get_table_description(cursor, "ledger_entry")
    kind = next(column for column in columns if column.name == "kind")
    assert kind.null_ok is False  # 0006 applied: the column is NOT NULL again


def _seed(apps: StateApps, alias: str = "default") -> dict[str, int]:
    account_model = apps.get_model("ledger", "Account")
    entry_model = apps.get_model("ledger", "Entry")
    account = account_model.objects.using(alias).create(name="cash")
    credit = entry_model.objects.using(alias).create(account=account, amount_cents=500)
    debit = entry_model.objects.using(alias).create(account=account, amount_cents=-200)
    preset = entry_model.objects.using(alias).create(
        account=account, amount_cents=-1, kind="credit"
    )
    return {"credit": credit.pk, "debit": debit.pk, "preset": preset.pk}


class TestBackfillEntryKind(TestMigrations):
    """Two test methods: each must start from the same state at 0004 (django-test-migrations
    #467), and neither may flush what 0003 seeded at head (their #438)."""

    app = "ledger"
    migrate_from = FROM
    migrate_to = TO
    seen_ids: ClassVar[list[dict[str, int]]] = []

    def setup_before_migration(self, apps: StateApps) -> None:
        entry_model = apps.get_model("ledger", "Entry")
        assert entry_model.objects.count() == 0  # a clean copy, nothing left by other tests
        self.ids = _seed(apps)
        self.seen_ids.append(self.ids)

    def test_backfill(self) -> None:
        entry_model = self.apps.get_model("ledger", "Entry")
        kinds = dict(entry_model.objects.values_list("pk", "kind"))
        assert kinds == {
            self.ids["credit"]: "credit",
            self.ids["debit"]: "debit",
            self.ids["preset"]: "credit",  # already set: kept
        }

    def test_second_method_starts_from_the_same_state(self) -> None:
        entry_model = self.apps.get_model("ledger", "Entry")
        assert entry_model.objects.count() == 3
        # The data migration's rows are in the copy too.
        currency = self.apps.get_model("ledger", "Currency")
        assert currency.objects.count() == 2

    def test_database_is_at_migrate_to(self) -> None:
        applied = MigrationRecorder(connections["default"]).applied_migrations()
        assert ("ledger", TO) in applied
        assert ("ledger", "0006_entry_kind_not_null") not in applied
        assert connections["default"].settings_dict["NAME"].startswith(snapshot.PREFIX)

    def test_sequences_continue_after_seeded_rows(self) -> None:
        entry_model = self.apps.get_model("ledger", "Entry")
        account = self.apps.get_model("ledger", "Account").objects.get()
        new = entry_model.objects.create(account=account, amount_cents=1, kind="credit")
        assert new.pk > max(self.ids.values())

    def test_z_every_method_got_the_same_ids(self) -> None:
        # Sequences are reset with the data: each method's seed got the same primary keys.
        assert len(self.seen_ids) >= 2
        assert self.seen_ids == [self.seen_ids[0]] * len(self.seen_ids), self.seen_ids

    def test_content_types_as_after_migrate(self) -> None:
        content_type = self.apps.get_model("contenttypes", "ContentType")
        assert content_type.objects.filter(app_label="ledger", model="entry").exists()


class TestInitialStateIsCarriedBack(TestMigrations):
    """setup_initial_state() runs at head with the current models; its rows are walked back
    through 0007..0005's reverse operations."""

    app = "ledger"
    migrate_from = FROM
    migrate_to = TO

    def setup_initial_state(self) -> None:
        account_model = global_apps.get_model("ledger", "Account")
        entry_model = global_apps.get_model("ledger", "Entry")
        account = account_model.objects.create(name="head", closed=True)
        self.head_entry = entry_model.objects.create(account=account, amount_cents=-3, kind="debit")

    def setup_before_migration(self, apps: StateApps) -> None:
        entry_model = apps.get_model("ledger", "Entry")
        assert list(entry_model.objects.values_list("kind", flat=True)) == ["debit"]
        self.new_entry = entry_model.objects.create(
            account_id=self.head_entry.account_id, amount_cents=7
        )

    def test_both_rows(self) -> None:
        entry_model = self.apps.get_model("ledger", "Entry")
        assert entry_model.objects.get(pk=self.head_entry.pk).kind == "debit"
        assert entry_model.objects.get(pk=self.new_entry.pk).kind == "credit"


class TestOtherAlias(TestMigrations):
    """connection = "other": the round trip runs on that alias only."""

    app = "ledger"
    migrate_from = FROM
    migrate_to = TO
    connection = "other"

    def setup_before_migration(self, apps: StateApps) -> None:
        self.ids = _seed(apps, "other")

    def test_backfill_on_other(self) -> None:
        entry_model = self.apps.get_model("ledger", "Entry")
        assert entry_model.objects.using("other").get(pk=self.ids["debit"]).kind == "debit"
        assert connections["other"].settings_dict["NAME"].startswith(snapshot.PREFIX)
        # default was not touched: still the test database at head, without these rows.
        assert str(connections["default"].settings_dict["NAME"]).startswith("test_")
        assert not global_apps.get_model("ledger", "Entry").objects.using("default").exists()
        applied = MigrationRecorder(connections["default"]).applied_migrations()
        assert HEAD in applied


@pytest.fixture(params=[True, False], ids=["fast-paths", "django-paths"])
def fast_paths(
    request: pytest.FixtureRequest, settings: Any, django_db_setup: None
) -> Iterator[bool]:
    """MIGTOOLS_FAST_PATHS on and off, each from no snapshot (a snapshot the other way built
    would otherwise be reused and the walk back never run)."""
    settings.MIGTOOLS_FAST_PATHS = request.param
    snapshot.store_for(connections["default"]).drop_all()
    yield request.param
    snapshot.store_for(connections["default"]).drop_all()


# -- function style: the migtools_migrator fixture ----------------------------------------


def test_migrator_round_trip_and_back_at_head(
    fast_paths: bool, migtools_migrator: Migrator
) -> None:
    apps = migtools_migrator.before(FROM, app="ledger")
    ids = _seed(apps)
    after = migtools_migrator.after(TO)
    assert after.get_model("ledger", "Entry").objects.get(pk=ids["debit"]).kind == "debit"
    migtools_migrator.reset()
    _at_head()
    assert not global_apps.get_model("ledger", "Entry").objects.exists()


def test_two_round_trips_start_from_the_same_state(
    fast_paths: bool, migtools_migrator: Migrator
) -> None:
    seen = []
    for _ in range(2):
        apps = migtools_migrator.before(FROM, app="ledger")
        entry_model = apps.get_model("ledger", "Entry")
        seen.append(entry_model.objects.count())
        _seed(apps)
        migtools_migrator.after(TO)
    assert seen == [0, 0]


def test_seeded_data_survives_migration_tests(migtools_migrator: Migrator) -> None:
    """Self-contained (no reliance on file order): whole TestMigrations cases run here, set up
    and torn down as Django's runner does (TransactionTestCase's teardown would flush), one of
    them on a copy it commits to (setup_initial_state), then a Migrator round trip; head still
    holds what 0003 seeded and none of the rows the tests created."""
    _at_head()
    result = unittest.TestResult()
    for case in (
        TestBackfillEntryKind("test_backfill"),
        TestBackfillEntryKind("test_database_is_at_migrate_to"),
        TestInitialStateIsCarriedBack("test_both_rows"),
    ):
        case(result)
    assert result.testsRun == 3
    assert result.wasSuccessful(), result.errors + result.failures
    apps = migtools_migrator.before(FROM, app="ledger")
    _seed(apps)
    migtools_migrator.after(TO)
    migtools_migrator.reset()
    _at_head()
    assert not global_apps.get_model("ledger", "Entry").objects.exists()
    assert not global_apps.get_model("ledger", "Account").objects.exists()


def test_rows_seeded_with_foreign_keys_then_their_table_altered(
    fast_paths: bool, migtools_migrator: Migrator
) -> None:
    """Seeded at 0002 (entries with a foreign key: deferred checks pending), then 0004 alters
    ledger_entry in the same rolled-back transaction: PostgreSQL refuses ALTER TABLE with
    pending trigger events unless they are settled first, as a real deploy's commits do."""
    apps = migtools_migrator.before(DEEP, app="ledger")
    account = apps.get_model("ledger", "Account").objects.create(name="fk")
    entry_model = apps.get_model("ledger", "Entry")
    entry = entry_model.objects.create(account=account, amount_cents=-5)
    after = migtools_migrator.after(TO)
    assert after.get_model("ledger", "Entry").objects.get(pk=entry.pk).kind == "debit"
    with connections["default"].cursor() as cursor:  # the FK stays deferred, as created
        cursor.execute(
            "SELECT condeferred FROM pg_constraint WHERE conrelid = 'ledger_entry'::regclass "
            "AND contype = 'f'"
        )
        assert cursor.fetchall() == [(True,)]


def test_other_alias_with_the_fixture(migtools_migrator: Migrator) -> None:
    apps = migtools_migrator.before(FROM, app="ledger", connection="other")
    ids = _seed(apps, "other")
    after = migtools_migrator.after(TO)
    assert (
        after.get_model("ledger", "Entry").objects.using("other").get(pk=ids["credit"]).kind
        == "credit"
    )
    migtools_migrator.reset()
    _at_head("other")


def test_post_migrate_is_sent_like_migrate(migtools_migrator: Migrator) -> None:
    calls: list[dict[str, Any]] = []

    def receiver(sender: Any, **kwargs: Any) -> None:
        if sender.label == "ledger":
            calls.append(kwargs)

    post_migrate.connect(receiver)
    try:
        migtools_migrator.before(FROM, app="ledger")
        migtools_migrator.after(TO)
    finally:
        post_migrate.disconnect(receiver)
    assert len(calls) == 1
    assert calls[0]["using"] == "default"
    assert [(m.name, backwards) for m, backwards in calls[0]["plan"]] == [(TO, False)]
    assert ContentType.objects.db_manager("default").filter(app_label="ledger").exists()


def test_snapshot_is_reused_within_the_run(migtools_migrator: Migrator) -> None:
    migtools_migrator.before(FROM, app="ledger")
    migtools_migrator.reset()
    before = snapshot.totals()
    migtools_migrator.before(FROM, app="ledger")
    after = snapshot.totals()
    assert after.built == before.built  # nothing rebuilt for the same target


# -- a target deep in history: the walk back ------------------------------------------------

DEEP = "0002_currency"  # 0003..0007 (a seed, two columns, a backfill, NOT NULL) come after it


class TestDeepTarget(TestMigrations):
    """migrate_from with five later migrations depending on it: the snapshot walks them all
    back (0003's reverse deletes the seeded currencies, 0004's drops ``kind``, 0007's drops
    ``closed``); the test sees exactly the database at 0002, and 0003 seeds it again."""

    app = "ledger"
    migrate_from = DEEP
    migrate_to = "0003_seed_currencies"

    def setup_before_migration(self, apps: StateApps) -> None:
        connection = connections["default"]
        applied = MigrationRecorder(connection).applied_migrations()
        assert ("ledger", DEEP) in applied
        assert not {key for key in applied if key[0] == "ledger" and key[1] > DEEP}
        with connection.cursor() as cursor:
            entry = connection.introspection.get_table_description(cursor, "ledger_entry")
            account = connection.introspection.get_table_description(cursor, "ledger_account")
        assert [column.name for column in entry] == ["id", "amount_cents", "account_id"]
        assert [column.name for column in account] == ["id", "name"]
        entry_model = apps.get_model("ledger", "Entry")
        assert [field.name for field in entry_model._meta.fields] == [
            "id",
            "amount_cents",
            "account",
        ]
        currency_model = apps.get_model("ledger", "Currency")
        assert not currency_model.objects.exists()  # 0003's reverse ran
        currency_model.objects.create(code="GBP", name="Pound sterling")
        account_model = apps.get_model("ledger", "Account")
        self.entry = entry_model.objects.create(
            account=account_model.objects.create(name="deep"), amount_cents=9
        )

    def test_seed_ran_on_the_state_at_migrate_from(self) -> None:
        currency_model = self.apps.get_model("ledger", "Currency")
        codes = sorted(currency_model.objects.values_list("code", flat=True))
        assert codes == ["EUR", "GBP", "USD"]
        entry_model = self.apps.get_model("ledger", "Entry")
        assert entry_model.objects.get(pk=self.entry.pk).amount_cents == 9
        assert not hasattr(entry_model.objects.get(pk=self.entry.pk), "kind")  # 0004 not run
        applied = MigrationRecorder(connections["default"]).applied_migrations()
        assert ("ledger", "0003_seed_currencies") in applied
        assert ("ledger", "0004_entry_kind") not in applied

    def test_second_method_same_start(self) -> None:
        currency_model = self.apps.get_model("ledger", "Currency")
        assert currency_model.objects.count() == 3


def _schema(alias: str) -> dict[str, Any]:
    """What a walk back must reproduce: columns, constraints, indexes, sequences, the
    django_migrations rows and the ledger's rows."""
    queries = {
        "columns": "SELECT table_name, column_name, data_type, is_nullable, column_default "
        "FROM information_schema.columns WHERE table_schema = 'public' ORDER BY 1, 2",
        "constraints": "SELECT conrelid::regclass::text, conname, pg_get_constraintdef(oid) "
        "FROM pg_constraint WHERE connamespace = 'public'::regnamespace ORDER BY 1, 2",
        "indexes": "SELECT tablename, indexname, indexdef FROM pg_indexes "
        "WHERE schemaname = 'public' ORDER BY 1, 2",
        "sequences": "SELECT sequencename, last_value FROM pg_sequences ORDER BY 1",
        "migrations": "SELECT app, name FROM django_migrations ORDER BY 1, 2",
    }
    with connections[alias].cursor() as cursor:
        cursor.execute("SELECT to_regclass('ledger_currency') IS NOT NULL")
        if cursor.fetchone()[0]:
            queries["currencies"] = "SELECT code, name FROM ledger_currency ORDER BY 1"
        result = {}
        for key, sql in queries.items():
            cursor.execute(sql)
            result[key] = cursor.fetchall()
        return result


@pytest.mark.parametrize("target", ["0001_initial", DEEP, "0004_entry_kind", "0007_account_closed"])
def test_walk_back_matches_djangos_executor(migtools_migrator: Migrator, target: str) -> None:
    """The snapshot's walk back leaves the database exactly as Django's executor does."""
    from django.db.migrations.executor import MigrationExecutor

    node = ("ledger", target)
    store = snapshot.store_for(connections["default"])
    recorded = set(MigrationRecorder(connections["default"]).applied_migrations())
    connections["default"].close()
    schemas = []
    for name, ours in ((f"{store.prefix}cmp_ours", True), (f"{store.prefix}cmp_django", False)):
        store.clone(store.db_name, name)
        try:
            with store.using(name) as wrapper:
                if ours:
                    planned = walk.WalkBack.plan(history.load(), recorded, node)
                    assert planned is not None
                    planned.run(wrapper)
                else:
                    MigrationExecutor(wrapper).migrate([node])
                schemas.append(_schema("default"))
        finally:
            store.drop(name)
    assert schemas[0] == schemas[1]
    assert ("ledger", target) in schemas[0]["migrations"]


@pytest.mark.parametrize("target", ["0001_initial", DEEP, "0004_entry_kind", "0007_account_closed"])
def test_migrator_at_target_equals_djangos_migrate(
    fast_paths: bool, migtools_migrator: Migrator, target: str
) -> None:
    """Both ways (MIGTOOLS_FAST_PATHS on and off): what a test sees at migrate_from is the
    database ``manage.py migrate ledger TARGET`` leaves, schema, rows and history."""
    from django.db.migrations.executor import MigrationExecutor

    node = ("ledger", target)
    store = snapshot.store_for(connections["default"])
    connections["default"].close()
    reference = f"{store.prefix}cmp_django"
    store.clone(store.db_name, reference)
    try:
        with store.using(reference):
            MigrationExecutor(connections["default"]).migrate([node])
            expected = _schema("default")
    finally:
        store.drop(reference)
    migtools_migrator.before(target, app="ledger")
    assert _schema("default") == expected
    assert node in expected["migrations"]


def test_fast_paths_setting_switches_to_djangos_executor(
    migtools_migrator: Migrator, settings: Any
) -> None:
    """MIGTOOLS_FAST_PATHS = False: no walk of ours is planned and the executor is Django's
    own (it loads its graph itself); True: ours, over the graph loaded once."""
    from django.db.migrations.executor import MigrationExecutor

    graph = history.load()
    recorded = {node for node in graph.loader.graph.nodes if node[0] == "ledger"}
    node = ("ledger", DEEP)
    settings.MIGTOOLS_FAST_PATHS = False
    assert walk.prepare(graph, recorded, node) is None
    plain = walk.executor(connections["default"], graph.loader)
    assert type(plain) is MigrationExecutor
    assert plain.loader is not graph.loader
    settings.MIGTOOLS_FAST_PATHS = True
    planned = walk.prepare(graph, recorded, node)
    assert planned is not None
    assert [m.name for m, _, _ in planned.steps][-1] == "0003_seed_currencies"
    ours = walk.executor(connections["default"], graph.loader)
    assert type(ours) is not MigrationExecutor
    assert ours.loader is graph.loader


def test_field_clone_cache_is_scoped_and_only_for_field_safe_operations() -> None:
    """The walk serves field clones from one deconstruct() only while it computes states,
    and not at all when an operation may change a field in place (RenameField)."""
    from django.db import migrations, models
    from django.db.migrations.state import ProjectState

    added = migrations.AddField("entry", "note", models.TextField(default=""))
    renamed = migrations.RenameField("entry", "note", "memo")
    safe = type("Migration", (migrations.Migration,), {"operations": [added]})("0100", "ledger")
    unsafe = type("Migration", (migrations.Migration,), {"operations": [renamed]})("0101", "ledger")
    state = ProjectState()
    assert walk.FieldClones(state, [safe]).enabled
    assert not walk.FieldClones(state, [safe, unsafe]).enabled
    with walk.FieldClones(state, [safe]) as clones:
        clones.add(added)
        assert "clone" in added.field.__dict__
        copy = added.field.clone()
        assert copy is not added.field
        assert copy.deconstruct() == added.field.deconstruct()
    assert "clone" not in added.field.__dict__


def test_copy_for_a_committing_test_comes_from_the_warm_copy(
    migtools_migrator: Migrator,
) -> None:
    """A test that needs its own copy gets one of the snapshot, whose pristine template is
    made from the idle warm copy the first time (the build only makes the warm copy)."""
    migtools_migrator.before(DEEP, app="ledger")
    migtools_migrator.reset()
    store = snapshot.store_for(connections["default"])
    from migtools.testing import history

    # This test's snapshot (other migration tests of the session may have made theirs).
    template = store.snapshot_name(history.load().fingerprint, f"ledger.{DEEP}")
    assert store.warm_name(template) in store.existing()
    store.copy_snapshot(template, store.run_name)
    try:
        assert store.exists(template)
        with store.using(store.run_name):
            applied = MigrationRecorder(connections["default"]).applied_migrations()
            assert ("ledger", "0003_seed_currencies") not in applied
            assert ("ledger", DEEP) in applied
    finally:
        store.drop(store.run_name)
    # The warm copy still serves the next test after its connection was closed for the copy.
    apps = migtools_migrator.before(DEEP, app="ledger")
    assert not apps.get_model("ledger", "Currency").objects.exists()


def test_warm_copy_in_doubt_is_rebuilt(migtools_migrator: Migrator) -> None:
    apps = migtools_migrator.before("0004_entry_kind", app="ledger")
    apps.get_model("ledger", "Currency").objects.create(code="CHF", name="Franc")
    connections["default"].close()  # the test's transaction is gone: the copy is in doubt
    migtools_migrator.reset()
    apps = migtools_migrator.before("0004_entry_kind", app="ledger")
    codes = sorted(apps.get_model("ledger", "Currency").objects.values_list("code", flat=True))
    assert codes == ["EUR", "USD"]


# -- clear errors -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"migrate_from": FROM}, "set `app`"),
        ({"migrate_from": FROM, "app": "nope"}, "app = 'nope' is not an installed app label"),
        ({"migrate_from": FROM, "app": "alpha"}, "app 'alpha' has no migrations"),
        ({"migrate_from": None, "app": "ledger"}, "set `migrate_from` to a migration name"),
        (
            {"migrate_from": "0004_entry_knd", "app": "ledger"},
            "migrate_from = '0004_entry_knd' is not a migration of app 'ledger'. "
            "Did you mean '0004_entry_kind',",
        ),
        (
            {"migrate_from": "0004", "app": "ledger"},
            "Did you mean '0004_entry_kind'?",
        ),
        (
            {"migrate_from": FROM, "app": "ledger", "connection": "nope"},
            "connection = 'nope': Unknown database alias 'nope' (DATABASES defines: 'default', "
            "'other'); set connection to one of them.",
        ),
    ],
)
def test_before_errors(migtools_migrator: Migrator, kwargs: dict[str, Any], message: str) -> None:
    migrate_from = kwargs.pop("migrate_from")
    with pytest.raises(MigrationTestError) as excinfo:
        migtools_migrator.before(migrate_from, **kwargs)
    assert message in str(excinfo.value)


def test_after_errors(migtools_migrator: Migrator) -> None:
    with pytest.raises(MigrationTestError, match=r"call before\(migrate_from\) first"):
        migtools_migrator.after(TO)
    migtools_migrator.before(FROM, app="ledger")
    with pytest.raises(MigrationTestError, match="'0003_seed_currencies' is already applied"):
        migtools_migrator.after("0003_seed_currencies")
    with pytest.raises(MigrationTestError, match="set `migrate_to`"):
        migtools_migrator.after(None)


def test_class_reports_missing_migrate_to_before_seeding(migtools_migrator: Migrator) -> None:
    seeded = []

    class NoTarget(TestMigrations):
        app = "ledger"
        migrate_from = FROM

        def setup_before_migration(self, apps: StateApps) -> None:
            seeded.append(apps)

    case = NoTarget("setup_initial_state")
    try:
        with pytest.raises(MigrationTestError, match="NoTarget: set `migrate_to`"):
            case.setUp()
    finally:
        case.doCleanups()
    assert seeded == []
    _at_head()


def test_default_app_setting(migtools_migrator: Migrator, settings: Any) -> None:
    settings.MIGTOOLS_DEFAULT_APP = "ledger"
    apps = migtools_migrator.before(FROM)
    assert apps.get_model("ledger", "Entry")


def test_databases_follow_connection() -> None:
    class OnOther(TestMigrations):
        connection = "other"

    assert OnOther.databases == {"default", "other"}
