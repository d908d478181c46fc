"""The offline diff of two project states and the DDL test of an elided RunSQL, in process."""

from __future__ import annotations

from django.db import models
from django.db.migrations.state import ModelState, ProjectState

from migtools.squash import compare, schema


def _state(*, qty_null: bool = True, index: bool = True, extra_model: bool = False) -> ProjectState:
    state = ProjectState()
    options: dict[str, object] = {
        "indexes": [models.Index(fields=["name"], name="item_name_idx")] if index else [],
        "constraints": [],
    }
    state.add_model(
        ModelState(
            "shop",
            "Item",
            [
                ("id", models.BigAutoField(primary_key=True)),
                ("name", models.CharField(max_length=20)),
                ("qty", models.IntegerField(null=qty_null)),
            ],
            options,
        )
    )
    if extra_model:
        state.add_model(
            ModelState("shop", "Extra", [("id", models.BigAutoField(primary_key=True))])
        )
    return state


def test_identical_states_have_no_difference() -> None:
    assert compare.diff_states(_state(), _state()) == []


def test_field_argument_difference_names_both_values() -> None:
    assert compare.diff_states(_state(qty_null=False), _state()) == [
        "field shop.Item.qty: null not set after the squash, null=True after the replaced "
        "migrations"
    ]


def test_index_and_model_only_on_one_side() -> None:
    found = compare.diff_states(_state(index=False, extra_model=True), _state())
    assert found[0] == "model shop.Extra: only after the squash (fields: id)"
    assert found[1].startswith(
        "index item_name_idx on shop.Item: only after the replaced migrations: <Index:"
    )


def test_ddl_in_sql() -> None:
    assert compare.ddl_in("CREATE INDEX i ON t (a); UPDATE t SET a = 1") == ["IndexStmt"]
    assert compare.ddl_in(["UPDATE t SET a = 1", ("DELETE FROM t WHERE a = %s", [1])]) == []
    assert compare.ddl_in("ALTER TABLE t ADD COLUMN b int") == ["AlterTableStmt"]
    assert compare.ddl_in("not sql at all") == []


def test_catalog_diff_by_definition_and_by_key() -> None:
    squash = {
        "index": {"a_idx": "CREATE INDEX a_idx ON public.t USING btree (a)"},
        "column": {"public.t.a": "integer NOT NULL"},
    }
    replaced = {
        "index": {
            "b_idx": "CREATE INDEX b_idx ON public.t USING btree (a)",
            "c_idx": "CREATE INDEX c_idx ON public.t USING btree (c)",
        },
        "column": {"public.t.a": "integer NULL"},
    }
    found = schema.diff(squash, replaced)
    assert found.differences == [
        "column public.t.a: integer NOT NULL after the squash, integer NULL after the replaced "
        "migrations",
        "index c_idx: only after the replaced migrations: CREATE INDEX c_idx ON public.t USING "
        "btree (c)",
    ]
    assert found.notes == [
        "index named a_idx after the squash and b_idx after the replaced migrations (same "
        "definition: CREATE INDEX ON public.t USING btree (a))"
    ]
