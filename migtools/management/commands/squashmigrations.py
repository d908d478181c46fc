"""Django's ``squashmigrations``, writing the squash in the migtools form (its attributes
carried from what it replaces), keeping the lockfile true, and saying what comes next."""

from __future__ import annotations

from typing import Any

from django.core.management.commands.squashmigrations import Command as DjangoCommand

from migtools import conf, project
from migtools.authoring import squash, writer
from migtools.errors import UnknownAppError
from migtools.management.base import MigtoolsCommandMixin, display_path
from migtools.squash import references


class Command(MigtoolsCommandMixin, DjangoCommand):
    help = DjangoCommand.help + " Keeps migrations_lockfile.txt current (migtools)."

    def handle(self, **options: Any) -> None:
        from django.apps import apps

        label = options["app_label"]
        if label not in apps.app_configs:
            raise UnknownAppError(label)  # exit 2, as in every command
        chosen = squash.selection(label, options["start_migration_name"], options["migration_name"])
        if chosen is not None:
            squash.refuse_resquash(chosen, label)
        managed = [c.label for c in project.managed_apps()]
        before = writer.snapshot(managed)
        super().handle(**options)
        written = writer.written_since(before, managed)
        attributes = squash.attributes(chosen) if chosen else None
        unported = []
        for path in written:
            try:
                writer.convert_file(path, attributes)
            except SyntaxError:
                # Django wrote references to functions of the replaced migrations that the
                # user must copy in ("Manual porting required" above): not Python yet.
                unported.append(path)
        if not written:
            return
        if unported:
            for path in unported:
                self.stderr.write(
                    f"{display_path(path)}: left as Django wrote it: copy in the functions it "
                    "names (see Django's manual porting note above), make it subclass "
                    "migtools.CheckedMigration, then run `manage.py migrations_lockfile`."
                )
            return
        self.refresh_lockfile()
        if options["verbosity"] < 1 or not chosen:
            return
        if attributes and attributes["is_post_deployment"]:
            post = [m.name for m in chosen if getattr(m, "is_post_deployment", False)]
            self.stdout.write(
                f"  is_post_deployment = True: it replaces post-deployment {', '.join(post)}."
            )
        replaced = {(m.app_label, m.name) for m in chosen}
        files = project.find_test_files(conf.migration_test_dirs(), project.root())
        named = references.find(files, replaced, conf.default_app())
        if named:
            self.stdout.write(
                "  These migration tests name replaced migrations; they keep running on the "
                "replaced migrations until prune_squashed removes them:"
            )
            for ref in named:
                self.stdout.write(
                    f"    {display_path(ref.path)}:{ref.line}: {ref.owner}.{ref.attr} = "
                    f"{ref.key[1]!r}"
                )
        self.stdout.write(
            self.style.MIGRATE_HEADING("Next: ")
            + f"python manage.py verify_squashes {label}  (proves the squash faithful; "
            "add it to CI)"
        )
