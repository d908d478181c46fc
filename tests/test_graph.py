"""Acceptance tests for ``migtools.graph.disk``: the on-disk graph must agree with the installed
Django's ``MigrationLoader(None, ignore_no_migrations=True)``, errors included."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import django
import pytest
from django.db.migrations.loader import MigrationLoader
from django.test.utils import modify_settings

from migtools.errors import ConflictError, GraphError, MigrationSyntaxError
from migtools.graph import disk as graph
from tests.helpers import Dep, render_migration, temp_migrations_module

LABELS = ("alpha", "beta", "gamma")
ERROR = "error"
SWAPPABLE_USER = "migrations.swappable_dependency(settings.AUTH_USER_MODEL)"

Outcome = dict[str, dict[str, Any]] | str


def mig(
    *deps: Dep,
    replaces: Iterable[Dep] = (),
    run_before: Iterable[Dep] = (),
    initial: bool | None = None,
    style: str = "list",
) -> str:
    return render_migration(deps, tuple(replaces), tuple(run_before), initial=initial, style=style)


def a(name: str) -> tuple[str, str]:
    return ("alpha", name)


def b(name: str) -> tuple[str, str]:
    return ("beta", name)


def g(name: str) -> tuple[str, str]:
    return ("gamma", name)


# --------------------------------------------------------------------------- oracles


def _summary(
    labels: Iterable[str],
    leaves: Callable[[str], list[str]],
    roots: Callable[[str], list[str]],
    nodes: Callable[[str], list[str]],
) -> dict[str, dict[str, Any]]:
    return {
        label: {"leaves": leaves(label), "roots": roots(label), "nodes": nodes(label)}
        for label in labels
    }


def django_outcome(labels: Iterable[str] = LABELS) -> Outcome:
    """What the installed Django's loader says (leaves, roots, nodes per app), or ERROR."""
    try:
        loader = MigrationLoader(None, ignore_no_migrations=True)
    except Exception:  # NodeNotFoundError, CircularDependencyError, ValueError, CommandError
        return ERROR
    g_ = loader.graph
    return _summary(
        labels,
        lambda label: [n for _, n in g_.leaf_nodes(label)],
        lambda label: [n for _, n in g_.root_nodes(label)],
        lambda label: sorted(n for app, n in g_.nodes if app == label),
    )


def our_outcome(labels: Iterable[str] = LABELS) -> Outcome:
    labels = list(labels)
    try:
        disk = graph.load(labels)
    except GraphError:
        return ERROR
    return _summary(
        labels,
        disk.leaves,
        disk.root_nodes,
        lambda label: [n for _, n in disk.nodes(label)],
    )


def django_ancestors(key: tuple[str, str]) -> set[tuple[str, str]]:
    loader = MigrationLoader(None, ignore_no_migrations=True)
    return set(loader.graph.forwards_plan(key)) - {key}


# --------------------------------------------------------------------------- the shapes


@dataclass(frozen=True)
class Shape:
    id: str
    apps: Mapping[str, Mapping[str, str | None]]
    # Leaves per app that the fixture is meant to produce (checked against Django, so a
    # fixture that does not build the intended shape fails), ERROR, or None when the
    # answer depends on the installed Django version.
    expect: Mapping[str, list[str]] | str | None
    note: str = field(default="")


SHAPES: list[Shape] = [
    Shape(
        "linear",
        {
            "alpha": {
                "0001_initial.py": mig(initial=True),
                "0002_second.py": mig(a("0001_initial"), style="tuple"),
                "0003_third.py": mig(a("0002_second"), style="annassign"),
            }
        },
        {"alpha": ["0003_third"]},
    ),
    Shape(
        "branching_conflict",
        {
            "alpha": {
                "0001_initial.py": mig(initial=True, style="tuple"),
                "0002_mine.py": mig(a("0001_initial")),
                "0002_theirs.py": mig(a("0001_initial"), style="checked"),
            }
        },
        {"alpha": ["0002_mine", "0002_theirs"]},
    ),
    Shape(
        "merge_migration",
        {
            "alpha": {
                "0001_initial.py": mig(initial=True),
                "0002_mine.py": mig(a("0001_initial")),
                "0002_theirs.py": mig(a("0001_initial"), style="tuple"),
                "0003_merge.py": mig(a("0002_mine"), a("0002_theirs"), style="annassign"),
            }
        },
        {"alpha": ["0003_merge"]},
    ),
    Shape(
        "squash_with_replaced_present",
        {
            "alpha": {
                "0001_initial.py": mig(initial=True),
                "0002_second.py": mig(a("0001_initial")),
                "0001_squashed_0002_second.py": mig(
                    replaces=[a("0001_initial"), a("0002_second")], initial=True, style="tuple"
                ),
                "0003_third.py": mig(a("0002_second")),
            },
            "beta": {"0001_initial.py": mig(a("0001_initial"), style="checked")},
        },
        {"alpha": ["0003_third"], "beta": ["0001_initial"]},
    ),
    Shape(
        "squash_with_replaced_deleted",
        {
            "alpha": {
                "0001_squashed_0002_second.py": mig(
                    replaces=[a("0001_initial"), a("0002_second")], initial=True
                ),
                "0003_third.py": mig(a("0002_second"), style="annassign"),
            },
        },
        {"alpha": ["0003_third"]},
    ),
    Shape(
        "squash_alone_is_the_leaf",
        {
            "alpha": {
                "0001_initial.py": mig(initial=True),
                "0002_second.py": mig(a("0001_initial")),
                "0001_squashed_0002_second.py": mig(
                    replaces=[a("0001_initial"), a("0002_second")], style="checked"
                ),
            },
        },
        {"alpha": ["0001_squashed_0002_second"]},
    ),
    Shape(
        "squash_of_a_squash",
        {
            "alpha": {
                "0001_initial.py": mig(initial=True),
                "0002_second.py": mig(a("0001_initial")),
                "0001_squashed_0002_second.py": mig(
                    replaces=[a("0001_initial"), a("0002_second")], initial=True
                ),
                "0003_third.py": mig(a("0002_second")),
                "0001_squashed_0003_third.py": mig(
                    replaces=[a("0001_squashed_0002_second"), a("0003_third")], initial=True
                ),
                "0004_fourth.py": mig(a("0003_third"), style="tuple"),
            },
            "beta": {"0001_initial.py": mig(a("0002_second"))},
        },
        None,
        "Django 6.0 resolves nested replacements; 5.2 depends on processing order",
    ),
    Shape(
        "squash_of_a_squash_originals_deleted",
        {
            "alpha": {
                "0001_squashed_0002_second.py": mig(
                    replaces=[a("0001_initial"), a("0002_second")], initial=True
                ),
                "0003_third.py": mig(a("0002_second"), style="annassign"),
                "0001_squashed_0003_third.py": mig(
                    replaces=[a("0001_squashed_0002_second"), a("0003_third")]
                ),
            },
        },
        None,
    ),
    Shape(
        "squash_replacing_each_other",
        {
            "alpha": {
                "0001_a.py": mig(replaces=[a("0002_b")]),
                "0002_b.py": mig(replaces=[a("0001_a")]),
            },
        },
        None,
    ),
    Shape(
        "run_before_same_app",
        {
            "alpha": {
                "0001_initial.py": mig(initial=True),
                "0002_second.py": mig(a("0001_initial")),
                "0003_hotfix.py": mig(a("0001_initial"), run_before=[a("0002_second")]),
            }
        },
        {"alpha": ["0002_second"]},
    ),
    Shape(
        "run_before_cross_app",
        {
            "alpha": {
                "0001_initial.py": mig(),
                "0002_second.py": mig(a("0001_initial"), style="tuple"),
            },
            "beta": {
                "0001_initial.py": mig(run_before=[a("0002_second")]),
                "0002_more.py": mig(b("0001_initial"), run_before=[("alpha", "__first__")]),
            },
        },
        {"alpha": ["0002_second"], "beta": ["0002_more"]},
    ),
    Shape(
        "run_before_cross_app_cycle",
        {
            "alpha": {
                "0001_initial.py": mig(),
                "0002_second.py": mig(a("0001_initial"), b("0001_initial")),
            },
            "beta": {
                "0001_initial.py": mig(run_before=[a("0001_initial")]),
                "0002_more.py": mig(b("0001_initial"), run_before=[b("0001_initial")]),
            },
        },
        ERROR,
    ),
    Shape(
        "run_before_missing_child",
        {
            "alpha": {"0001_initial.py": mig()},
            "beta": {"0001_initial.py": mig(run_before=[a("0002_gone")])},
        },
        ERROR,
    ),
    Shape(
        "swappable_first_latest",
        {
            "alpha": {
                "0001_initial.py": mig(SWAPPABLE_USER, b("__first__"), initial=True),
                "0002_second.py": mig(
                    a("0001_initial"), ("gamma", "__latest__"), ("alpha", "__first__")
                ),
            },
            "beta": {
                "0001_initial.py": mig(("auth", "__first__"), style="tuple"),
                "0002_second.py": mig(b("0001_initial"), ("contenttypes", "__latest__")),
            },
            "gamma": {
                "0001_initial.py": mig(style="annassign"),
                "0002_second.py": mig(g("0001_initial"), style="annassign"),
            },
        },
        {"alpha": ["0002_second"], "beta": ["0002_second"], "gamma": ["0002_second"]},
    ),
    Shape(
        "first_on_unmigrated_and_empty_apps",
        {
            "alpha": {"0001_initial.py": mig(b("__first__"), ("migtools", "__first__"))},
            "beta": {},
        },
        {"alpha": ["0001_initial"], "beta": []},
    ),
    Shape(
        "latest_of_own_app_is_a_missing_node",
        {"alpha": {"0001_initial.py": mig(), "0002_x.py": mig(a("__latest__"))}},
        ERROR,
    ),
    Shape(
        "first_on_an_uninstalled_app",
        {"alpha": {"0001_initial.py": mig(("nosuchapp", "__first__"))}},
        ERROR,
    ),
    Shape(
        "cross_app_chain",
        {
            "alpha": {
                "0001_initial.py": mig(),
                "0002_second.py": mig(a("0001_initial"), b("0001_initial")),
                "0003_third.py": mig(a("0002_second"), g("0002_second"), style="tuple"),
            },
            "beta": {
                "0001_initial.py": mig(a("0001_initial")),
                "0002_second.py": mig(b("0001_initial"), a("0003_third"), style="checked"),
            },
            "gamma": {
                "0001_initial.py": mig(b("0001_initial")),
                "0002_second.py": mig(g("0001_initial"), a("0002_second")),
            },
        },
        {"alpha": ["0003_third"], "beta": ["0002_second"], "gamma": ["0002_second"]},
    ),
    Shape(
        "empty_app",
        {"alpha": {}, "beta": {"0001_initial.py": mig()}},
        {"alpha": [], "beta": ["0001_initial"]},
    ),
    Shape(
        "non_numbered_names",
        {
            "alpha": {
                "initial.py": mig(initial=True),
                "add_owner.py": mig(a("initial")),
                "zz_backfill.py": mig(a("add_owner"), style="tuple"),
                "b_merge_later.py": mig(a("zz_backfill"), style="annassign"),
            }
        },
        {"alpha": ["b_merge_later"]},
    ),
    Shape(
        "missing_parent",
        {
            "alpha": {
                "0001_initial.py": mig(),
                "0002_second.py": mig(a("0001_initial"), a("0001_gone")),
            }
        },
        ERROR,
    ),
    Shape(
        "missing_parent_in_another_app",
        {
            "alpha": {"0001_initial.py": mig(b("0007_gone"))},
            "beta": {"0001_initial.py": mig()},
        },
        ERROR,
    ),
    Shape(
        "missing_parent_in_contrib_auth",
        {"alpha": {"0001_initial.py": mig(("auth", "9999_gone"))}},
        ERROR,
    ),
    Shape(
        "dependency_on_an_uninstalled_app",
        {"alpha": {"0001_initial.py": mig(("nosuchapp", "0001_initial"))}},
        ERROR,
    ),
    Shape(
        "cycle",
        {
            "alpha": {
                "0001_initial.py": mig(a("0002_second")),
                "0002_second.py": mig(a("0001_initial")),
            }
        },
        ERROR,
    ),
    Shape(
        "cross_app_cycle",
        {
            "alpha": {"0001_initial.py": mig(b("0001_initial"))},
            "beta": {"0001_initial.py": mig(g("0001_initial"))},
            "gamma": {"0001_initial.py": mig(a("0001_initial"))},
        },
        ERROR,
    ),
    Shape(
        "underscore_tilde_and_packages_ignored",
        {
            "alpha": {
                "0001_initial.py": mig(),
                "0002_second.py": mig(a("0001_initial")),
                "_helpers.py": "this is not python (",
                "~0003_backup.py": mig(a("0002_nope")),
                "_0003_draft.py": mig(a("0002_second")),
                "0003_sub/": mig(a("0002_second")),
                "notes/": None,
                "README.txt": "not a module",
            }
        },
        {"alpha": ["0002_second"]},
    ),
    Shape(
        "dependency_on_a_replaced_node",
        {
            "alpha": {
                "0001_squashed_0003_third.py": mig(
                    replaces=[a("0001_initial"), a("0002_second"), a("0003_third")]
                ),
                "0004_fourth.py": mig(a("0003_third")),
            },
            "beta": {
                "0001_initial.py": mig(a("0002_second")),
                "0002_second.py": mig(b("0001_initial"), style="tuple"),
            },
            "gamma": {"0001_initial.py": mig(run_before=[a("0001_initial")])},
        },
        {"alpha": ["0004_fourth"], "beta": ["0002_second"], "gamma": ["0001_initial"]},
    ),
    Shape(
        "squash_depending_on_what_it_replaces",
        {
            "alpha": {
                "0001_initial.py": mig(),
                "0002_second.py": mig(a("0001_initial")),
                "0001_squashed_0002_second.py": mig(
                    a("0001_initial"), replaces=[a("0001_initial"), a("0002_second")]
                ),
            },
        },
        ERROR,
    ),
]


def test_library_is_large_enough() -> None:
    assert len(SHAPES) >= 15
    assert len({s.id for s in SHAPES}) == len(SHAPES)


@pytest.mark.parametrize("shape", SHAPES, ids=[s.id for s in SHAPES])
def test_leaves_agree_with_django(shape: Shape, tmp_path: Path) -> None:
    with temp_migrations_module(tmp_path, shape.apps):
        expected = django_outcome()
        ours = our_outcome()
    if isinstance(shape.expect, str):
        assert expected == shape.expect
    elif shape.expect is not None:
        assert not isinstance(expected, str), "Django failed to load a valid fixture"
        assert {label: expected[label]["leaves"] for label in shape.expect} == shape.expect
    assert ours == expected


def test_squash_of_a_squash_follows_the_installed_django(tmp_path: Path) -> None:
    shape = next(s for s in SHAPES if s.id == "squash_of_a_squash")
    with temp_migrations_module(tmp_path, shape.apps):
        ours = our_outcome()
        expected = django_outcome()
    assert ours == expected
    if django.VERSION >= (6, 0):
        assert not isinstance(ours, str)
        assert ours["alpha"]["leaves"] == ["0004_fourth"]
        assert ours["alpha"]["nodes"] == ["0001_squashed_0003_third", "0004_fourth"]


SEED_PROBE = """
import json, os, sys, tempfile
from pathlib import Path
import django
django.setup()
from tests.helpers import temp_migrations_module
from tests.test_graph import SHAPES, django_outcome, our_outcome
shape = next(s for s in SHAPES if s.id == sys.argv[1])
with tempfile.TemporaryDirectory() as tmp, temp_migrations_module(Path(tmp), shape.apps):
    print(json.dumps([django_outcome(), our_outcome()]))
"""


@pytest.mark.parametrize("shape_id", ["squash_of_a_squash", "squash_of_a_squash_originals_deleted"])
def test_squash_of_a_squash_agrees_under_every_hash_seed(shape_id: str) -> None:
    """Django 5.2 replaces squashes in the iteration order of a set of file names, so
    whether a squash of a squash loads depends on PYTHONHASHSEED; 6.0 always loads it.
    The reader must agree with the loader of its own process, whatever the seed."""
    outcomes = []
    for seed in range(1, 5):
        env = {
            **os.environ,
            "PYTHONHASHSEED": str(seed),
            "DJANGO_SETTINGS_MODULE": "tests.settings",
        }
        proc = subprocess.run(
            [sys.executable, "-c", SEED_PROBE, shape_id],
            cwd=Path(__file__).resolve().parent.parent,
            env=env,
            capture_output=True,
            text=True,
            check=True,
        )
        theirs, ours = json.loads(proc.stdout.strip().splitlines()[-1])
        assert ours == theirs, f"PYTHONHASHSEED={seed}"
        outcomes.append(theirs == ERROR)
    if django.VERSION >= (6, 0):
        assert not any(outcomes)
    else:
        assert any(outcomes) and not all(outcomes)


@pytest.mark.parametrize(
    "shape_id", ["cross_app_chain", "dependency_on_a_replaced_node", "swappable_first_latest"]
)
def test_ancestors_agree_with_django(shape_id: str, tmp_path: Path) -> None:
    shape = next(s for s in SHAPES if s.id == shape_id)
    with temp_migrations_module(tmp_path, shape.apps):
        disk = graph.load(LABELS)
        for label in shape.apps:
            for leaf in disk.leaves(label):
                assert disk.ancestors((label, leaf)) == django_ancestors((label, leaf))


def test_referenced_apps_are_context_not_answers(tmp_path: Path) -> None:
    shape = next(s for s in SHAPES if s.id == "swappable_first_latest")
    with temp_migrations_module(tmp_path, shape.apps):
        disk = graph.load(["alpha"])
    # alpha reaches beta and gamma (its own files), auth and contenttypes (through beta).
    assert list(disk.apps) == ["alpha"]
    assert set(disk.context) == {"beta", "gamma", "auth", "contenttypes"}
    assert disk.leaves("alpha") == ["0002_second"]
    assert disk.conflicts() == {}
    assert ("auth", "0001_initial") in disk.ancestors(("alpha", "0001_initial"))


def test_conflicts_and_leaf(tmp_path: Path) -> None:
    shape = next(s for s in SHAPES if s.id == "branching_conflict")
    with temp_migrations_module(tmp_path, {**shape.apps, "beta": {"0001_initial.py": mig()}}):
        disk = graph.load(LABELS)
        django_conflicts = MigrationLoader(None, ignore_no_migrations=True).detect_conflicts()
    assert disk.conflicts() == django_conflicts == {"alpha": ["0002_mine", "0002_theirs"]}
    assert disk.leaf("beta") == "0001_initial"
    assert disk.leaf("gamma") is None
    with pytest.raises(ConflictError) as excinfo:
        disk.leaf("alpha")
    assert excinfo.value.conflicts == {"alpha": ["0002_mine", "0002_theirs"]}
    assert "0002_mine, 0002_theirs in alpha" in str(excinfo.value)


def test_migrations_directory_without_init_is_unmigrated_as_for_django(tmp_path: Path) -> None:
    """A migrations directory without ``__init__.py`` is a namespace package: Django's loader
    calls the app unmigrated, and so must the reader (and hence the lockfile)."""
    from migtools.graph import lockfile

    apps = {"alpha": {"0001_initial.py": mig()}, "beta": {"0001_initial.py": mig()}}
    with temp_migrations_module(tmp_path, apps) as dirs:
        (dirs["beta"] / "__init__.py").unlink()
        loader = MigrationLoader(None, ignore_no_migrations=True)
        disk = graph.load(LABELS)
        assert "beta" in loader.unmigrated_apps and "alpha" in loader.migrated_apps
        assert disk.leaf("beta") is None
        assert disk.leaf("alpha") == "0001_initial"
        assert lockfile.expected(disk) == {"alpha": "0001_initial"}
    # Control: the same files with their __init__.py are read as migrated.
    (tmp_path / "control").mkdir()
    with temp_migrations_module(tmp_path / "control", apps):
        assert graph.load(LABELS).leaf("beta") == "0001_initial"


def test_reader_records_every_attribute(tmp_path: Path) -> None:
    source = render_migration(
        [SWAPPABLE_USER, ("beta", "0001_initial")],
        [("alpha", "0001_initial")],
        [("gamma", "0002_x")],
        initial=True,
        style="annassign",
    )
    parsed = graph.parse_migration_source(source, tmp_path / "m.py", "alpha", "0002_m")
    assert parsed.key == ("alpha", "0002_m")
    assert parsed.dependencies == (("auth", "__first__"), ("beta", "0001_initial"))
    assert parsed.replaces == (("alpha", "0001_initial"),)
    assert parsed.run_before == (("gamma", "0002_x"),)
    assert parsed.initial is True
    assert parsed.line == source.splitlines().index("class Migration(migrations.Migration):") + 1


# --------------------------------------------------------------------------- real projects

CONTRIB_APPS = [
    "django.contrib.admin",
    "django.contrib.sessions",
    "django.contrib.sites",
    "django.contrib.flatpages",
    "django.contrib.redirects",
    "django.contrib.messages",
]
ALLAUTH_APPS = [
    "allauth",
    "allauth.account",
    "allauth.socialaccount",
    "allauth.idp.oidc",
    "allauth.mfa",
    "allauth.usersessions",
]


def _labels_with_migrations(loader: MigrationLoader) -> list[str]:
    return sorted({app for app, _ in loader.graph.nodes})


def test_real_installed_projects_agree_with_django() -> None:
    """Every app of django.contrib and of the installed django-allauth."""
    # allauth.account's ready() insists on its middleware; INSTALLED_APPS is applied before
    # the other overridden settings, so the middleware goes in first.
    with (
        modify_settings(MIDDLEWARE={"append": "allauth.account.middleware.AccountMiddleware"}),
        modify_settings(INSTALLED_APPS={"append": CONTRIB_APPS + ALLAUTH_APPS}),
    ):
        loader = MigrationLoader(None, ignore_no_migrations=True)
        labels = _labels_with_migrations(loader)
        for required in ("account", "socialaccount", "mfa", "usersessions", "allauth_idp_oidc"):
            assert required in labels
        for required in ("auth", "contenttypes", "admin", "sessions", "sites", "flatpages"):
            assert required in labels
        expected = {label: [n for _, n in loader.graph.leaf_nodes(label)] for label in labels}
        disk = graph.load(labels)
        ours = {label: disk.leaves(label) for label in labels}
        # Each app on its own too: the answer must not depend on which apps were asked for.
        alone = {label: graph.load([label]).leaves(label) for label in labels}
        warnings = disk.warnings
        socialaccount_dir = disk.apps["socialaccount"].directory
    assert ours == expected
    assert alone == expected
    assert all(len(leaves) == 1 for leaves in expected.values())
    # allauth computes socialaccount's dependencies (`[...] if SITES_ENABLED else [] + [...]`):
    # the one file of the corpus too dynamic to read; that app alone is imported instead.
    socialaccount = Path(socialaccount_dir) / "0001_initial.py"
    assert len(warnings) == 1
    assert warnings[0].startswith(f"{socialaccount}:8: not a literal list or tuple; ")
    assert "'socialaccount'" in warnings[0]


# --------------------------------------------------------------------------- never imports

MARKER_PRELUDE = """
import pathlib
pathlib.Path({marker!r}).write_text("imported")
"""


def test_reading_imports_no_migration_module(tmp_path: Path) -> None:
    marker = tmp_path / "imported.marker"
    prelude = MARKER_PRELUDE.format(marker=str(marker))
    apps = {
        "alpha": {
            "0001_initial.py": render_migration(prelude=prelude),
            "0002_second.py": render_migration([("alpha", "0001_initial")], prelude=prelude),
        },
        "beta": {"0001_initial.py": render_migration([("alpha", "0002_second")], prelude=prelude)},
    }
    with temp_migrations_module(tmp_path, apps) as dirs:
        package = dirs["alpha"].parent.name
        disk = graph.load(LABELS)
        assert disk.leaves("alpha") == ["0002_second"]
        assert disk.leaves("beta") == ["0001_initial"]
        assert disk.warnings == []
        assert not marker.exists()
        assert not [m for m in sys.modules if m.startswith(f"{package}.")]
        # The fixture is live: Django's loader does import it and leaves the marker.
        MigrationLoader(None, ignore_no_migrations=True)
        assert marker.exists()


# --------------------------------------------------------------------------- bad input


def test_syntax_error_names_file_and_line(tmp_path: Path) -> None:
    broken = "from django.db import migrations\n\nclass Migration(migrations.Migration):\n"
    broken += "    dependencies = [\n        ('alpha', '0001_initial')\n    operations = []\n"
    apps = {"alpha": {"0001_initial.py": render_migration(), "0002_broken.py": broken}}
    with (
        temp_migrations_module(tmp_path, apps) as dirs,
        pytest.raises(MigrationSyntaxError) as excinfo,
    ):
        graph.load(LABELS)
    path = dirs["alpha"] / "0002_broken.py"
    assert excinfo.value.path == str(path)
    assert str(excinfo.value).startswith(f"{path}:")
    assert excinfo.value.line in (4, 5, 6)
    assert excinfo.value.line == compile_error_line(broken)


def compile_error_line(source: str) -> int:
    try:
        compile(source, "x.py", "exec")
    except SyntaxError as exc:
        return exc.lineno or 0
    raise AssertionError("source compiles")


DYNAMIC = """from django.db import migrations


def make_deps():
    return [("alpha", "0001_initial")]


class Migration(migrations.Migration):
    dependencies = make_deps()
    operations = []
"""


def test_non_literal_dependencies_fall_back_to_importing_that_app(tmp_path: Path) -> None:
    apps = {
        "alpha": {
            "0001_initial.py": render_migration(),
            "0002_dynamic.py": DYNAMIC,
            "0002_other.py": render_migration([("alpha", "0001_initial")]),
            "0003_merge.py": render_migration([("alpha", "0002_dynamic"), ("alpha", "0002_other")]),
        },
        "beta": {"0001_initial.py": render_migration([("alpha", "0003_merge")])},
    }
    with temp_migrations_module(tmp_path, apps) as dirs:
        package = dirs["alpha"].parent.name
        disk = graph.load(LABELS)
        expected = django_outcome()
        imported_alpha = f"{package}.alpha.0002_dynamic" in sys.modules
    assert our_outcome_of(disk) == expected
    assert disk.leaves("alpha") == ["0003_merge"]
    assert disk.apps["alpha"].files["0002_dynamic"].dependencies == (("alpha", "0001_initial"),)
    path = dirs["alpha"] / "0002_dynamic.py"
    assert len(disk.apps["alpha"].warnings) == 1
    warning = disk.apps["alpha"].warnings[0]
    assert warning.startswith(f"{path}:9: ")
    assert "alpha" in warning and "import" in warning
    assert disk.apps["beta"].warnings == []
    assert disk.warnings == [warning]
    assert imported_alpha


def test_non_literal_dependencies_imports_only_that_app(tmp_path: Path) -> None:
    marker = tmp_path / "beta.marker"
    apps = {
        "alpha": {"0001_initial.py": DYNAMIC.replace("= make_deps()", "= make_deps()[:0]")},
        "beta": {
            "0001_initial.py": render_migration(
                [("alpha", "0001_initial")],
                prelude=MARKER_PRELUDE.format(marker=str(marker)),
            )
        },
    }
    with temp_migrations_module(tmp_path, apps) as dirs:
        package = dirs["alpha"].parent.name
        disk = graph.load(LABELS)
        beta_imported = any(m.startswith(f"{package}.beta.") for m in sys.modules)
    assert disk.leaves("alpha") == ["0001_initial"]
    assert disk.leaves("beta") == ["0001_initial"]
    assert not beta_imported
    assert not marker.exists()


def our_outcome_of(disk: graph.DiskGraph) -> Outcome:
    return _summary(
        LABELS,
        disk.leaves,
        disk.root_nodes,
        lambda label: [n for _, n in disk.nodes(label)],
    )
