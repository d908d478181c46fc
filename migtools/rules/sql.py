"""SQL rules: statements parsed by pglast (the PostgreSQL grammar), judged one by one.

``SqlContext`` carries what a statement cannot tell by itself: which tables are new (created in
the same run: operations on them lock nothing that matters), which are large, whether the
migration is atomic, its stage, and the old column types (for safe widenings). ``check`` returns
raw ``Hit``s; the rule engine (``migtools.rules.engine``) turns them into ``Finding``s at their
effective levels.
"""

from __future__ import annotations

from collections.abc import Collection, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from pglast import ast, parse_sql, parser
from pglast.enums import AlterTableType, ConstrType, ObjectType
from pglast.parser import ParseError

from migtools.rules.catalogue import Stage

if TYPE_CHECKING:
    pass

MAX_IDENTIFIER_BYTES = 63

# Functions whose value differs per row: a column default calling one rewrites the table.
VOLATILE_FUNCTIONS = frozenset(
    {
        "random",
        "clock_timestamp",
        "timeofday",
        "gen_random_uuid",
        "uuid_generate_v1",
        "uuid_generate_v1mc",
        "uuid_generate_v4",
        "uuidv4",
        "uuidv7",
        "nextval",
        "txid_current",
    }
)
# Rules the lock-light DDL (CONCURRENTLY, NOT VALID + VALIDATE) avoids, outside a transaction.
LOCK_LIGHT_FIXES = frozenset(
    {
        "index-not-concurrent",
        "drop-index-not-concurrent",
        "fk-not-valid-missing",
        "check-constraint-not-valid-missing",
        "set-not-null",
    }
)
DATA_STATEMENTS = (ast.InsertStmt, ast.UpdateStmt, ast.DeleteStmt, ast.SelectStmt, ast.CopyStmt)


@dataclass(frozen=True)
class Hit:
    rule_id: str
    message: str
    statement: str  # the statement's text, as collected
    statement_index: int


@dataclass
class SqlContext:
    stage: Stage = Stage.PRE_DEPLOY
    atomic: bool = True
    new_tables: set[str] = field(default_factory=set)
    large_tables: Collection[str] = ()
    # (table, column) -> the column's database type before the operation (e.g. "varchar(20)")
    old_types: dict[tuple[str, str], str] = field(default_factory=dict)
    new_indexes: set[str] = field(default_factory=set)
    # (table, constraint name) -> column a CHECK (col IS NOT NULL) constraint proves
    not_null_checks: dict[tuple[str, str], str] = field(default_factory=dict)
    proven_not_null: set[tuple[str, str]] = field(default_factory=set)
    # (table, column) -> NOT NULL?, for columns added to an existing table with a DEFAULT:
    # a later DROP DEFAULT (Django's `default=`) leaves them without a database default
    added_defaults: dict[tuple[str, str], bool] = field(default_factory=dict)
    # (table, constraint name) -> the rule a NOT VALID constraint on an existing table
    # answers to when it is validated in the same transaction
    not_valid: dict[tuple[str, str], str] = field(default_factory=dict)


@dataclass
class Statement:
    text: str
    node: Any | None  # a pglast ast node; None when the text does not parse
    error: str | None = None


def split(sql: str) -> list[Statement]:
    """The statements of ``sql`` (one collected string may hold several), with their nodes."""
    try:
        raw = parse_sql(sql)
    except ParseError as exc:
        return [Statement(sql, None, str(exc))]
    if len(raw) == 1:
        return [Statement(sql.strip().rstrip(";").rstrip(), raw[0].stmt)]
    data = sql.encode()
    out = []
    for r in raw:
        start = r.stmt_location or 0
        end = len(data) if not r.stmt_len else start + r.stmt_len
        out.append(Statement(data[start:end].decode().strip(), r.stmt))
    return out


def is_data_statement(node: Any) -> bool:
    return isinstance(node, DATA_STATEMENTS)


def long_identifiers(sql: str) -> list[str]:
    """Identifiers in ``sql`` longer than PostgreSQL's 63 bytes (the parser truncates them, so
    they are read from the scanner's tokens)."""
    if not any(len(word) > MAX_IDENTIFIER_BYTES for word in sql.split()):
        return []  # cheap pre-check: no token of that length can be present
    data = sql.encode()
    found = []
    for token in parser.scan(sql):
        if token.name != "IDENT":
            continue
        text = data[token.start : token.end + 1].decode()
        if text.startswith('"'):
            text = text[1:-1].replace('""', '"')
        if len(text.encode()) > MAX_IDENTIFIER_BYTES:
            found.append(text)
    return found


def _type_name(type_name: Any) -> str:
    names = [n.sval for n in type_name.names if n.sval != "pg_catalog"]
    base = names[-1] if names else ""
    mods = [
        getattr(m.val, "ival", 0) for m in (type_name.typmods or ()) if isinstance(m, ast.A_Const)
    ]
    return f"{base}({','.join(str(m) for m in mods)})" if mods else base


def _parse_type(db_type: str) -> tuple[str, list[int]]:
    base, _, rest = db_type.strip().lower().partition("(")
    base = {"character varying": "varchar", "integer": "int4", "bigint": "int8"}.get(
        base.strip(), base.strip()
    )
    mods = [int(m) for m in rest.rstrip(")").split(",") if m.strip().isdigit()]
    return base, mods


def safe_type_change(old: str | None, new: str) -> bool:
    """True for changes PostgreSQL makes without rewriting the table: varchar(n) to a longer
    varchar or to text, and numeric(p,s) to a larger precision with the same scale."""
    if old is None:
        return False
    old_base, old_mods = _parse_type(old)
    new_base, new_mods = _parse_type(new)
    if old_base == "varchar" and new_base == "text":
        return True
    if old_base == new_base == "varchar":
        return not new_mods or (bool(old_mods) and new_mods[0] >= old_mods[0])
    if old_base == new_base == "numeric" and len(old_mods) == len(new_mods) == 2:
        return new_mods[0] >= old_mods[0] and new_mods[1] == old_mods[1]
    return old_base == new_base and old_mods == new_mods


def _volatile(expr: Any) -> str | None:
    for node in _walk(expr):
        if isinstance(node, ast.FuncCall):
            name = (node.funcname or ((None,)))[-1]
            name = getattr(name, "sval", "")
            if name in VOLATILE_FUNCTIONS:
                return str(name)
    return None


def _walk(node: Any) -> Iterator[Any]:
    if isinstance(node, ast.Node):
        yield node
        for name in node:
            yield from _walk(getattr(node, name))
    elif isinstance(node, tuple):
        for item in node:
            yield from _walk(item)


def _is_not_null_check(constraint: Any) -> str | None:
    expr: Any = constraint.raw_expr
    if (
        isinstance(expr, ast.NullTest)
        and expr.nulltesttype == 1  # IS_NOT_NULL
        and isinstance(expr.arg, ast.ColumnRef)
    ):
        fields: Any = expr.arg.fields
        return str(fields[-1].sval)
    return None


class _Checker:
    def __init__(self, ctx: SqlContext) -> None:
        self.ctx = ctx
        self.hits: list[Hit] = []
        self.text = ""
        self.index = 0

    def hit(self, rule_id: str, message: str) -> None:
        if self.ctx.atomic and rule_id in LOCK_LIGHT_FIXES and "atomic = False" not in message:
            message += (
                " In an atomic migration the lock-light form cannot run (it needs to be "
                "outside a transaction): set atomic = False."
            )
        self.hits.append(Hit(rule_id, message, self.text, self.index))

    def existing(self, table: str) -> bool:
        return table not in self.ctx.new_tables

    def statement(self, stmt: Statement) -> None:
        self.text = stmt.text
        for name in long_identifiers(stmt.text):
            self.hit(
                "identifier-too-long",
                f"Identifier {name!r} is {len(name.encode())} bytes; PostgreSQL truncates it to "
                f"{MAX_IDENTIFIER_BYTES}.",
            )
        node = stmt.node
        if node is None:
            self.hit("run-sql-not-safe", f"SQL that PostgreSQL's parser rejects: {stmt.error}")
            return
        method = getattr(self, f"on_{type(node).__name__}", None)
        if method is not None:
            method(node)

    # -- statements ------------------------------------------------------------------------

    def on_CreateStmt(self, node: Any) -> None:
        self.ctx.new_tables.add(node.relation.relname)

    def on_CreateTableAsStmt(self, node: Any) -> None:
        self.ctx.new_tables.add(node.into.rel.relname)

    def on_IndexStmt(self, node: Any) -> None:
        table = node.relation.relname
        if node.idxname:
            self.ctx.new_indexes.add(node.idxname)
        if node.concurrent and self.ctx.atomic:
            self.hit(
                "concurrently-in-atomic",
                f"CREATE INDEX CONCURRENTLY on {table!r} in an atomic migration fails: "
                "it cannot run in a transaction.",
            )
        if not self.existing(table):
            return
        if not node.concurrent:
            self.hit(
                "index-not-concurrent",
                f"Index {node.idxname or ''!r} on existing table {table!r} is built without "
                "CONCURRENTLY: writes to the table wait for the whole build.",
            )
        if table in self.ctx.large_tables and self.ctx.stage is not Stage.POST_DEPLOYMENT:
            self.hit(
                "index-on-large-table-not-post-deployment",
                f"Index on large table {table!r} in a migration that is not is_post_deployment.",
            )

    def on_DropStmt(self, node: Any) -> None:
        names = [".".join(p.sval for p in obj) for obj in node.objects]
        if node.removeType == ObjectType.OBJECT_INDEX:
            if node.concurrent and self.ctx.atomic:
                self.hit(
                    "concurrently-in-atomic",
                    "DROP INDEX CONCURRENTLY in an atomic migration fails: it cannot run in a "
                    "transaction.",
                )
            if not node.concurrent:
                old = [n for n in names if n.split(".")[-1] not in self.ctx.new_indexes]
                if old:
                    self.hit(
                        "drop-index-not-concurrent",
                        f"Index {', '.join(old)} dropped without CONCURRENTLY.",
                    )
        elif node.removeType == ObjectType.OBJECT_TABLE:
            old = [n for n in names if self.existing(n.split(".")[-1])]
            if old:
                self.hit("drop-table", f"Table {', '.join(old)} is dropped.")

    def on_RenameStmt(self, node: Any) -> None:
        table = node.relation.relname if node.relation is not None else None
        if node.renameType == ObjectType.OBJECT_COLUMN and table and self.existing(table):
            self.hit(
                "rename-column",
                f"Column {node.subname!r} of {table!r} is renamed to {node.newname!r}.",
            )
        elif node.renameType == ObjectType.OBJECT_TABLE and table:
            if self.existing(table):
                self.hit("rename-table", f"Table {table!r} is renamed to {node.newname!r}.")
            else:
                self.ctx.new_tables.add(node.newname)

    def on_AlterTableStmt(self, node: Any) -> None:
        table = node.relation.relname
        existing = self.existing(table)
        for cmd in node.cmds:
            sub = cmd.subtype
            if sub == AlterTableType.AT_SetTableSpace and existing:
                self.hit("set-tablespace", f"{table!r} is moved to tablespace {cmd.name!r}.")
            if node.objtype != ObjectType.OBJECT_TABLE:
                continue
            if sub == AlterTableType.AT_AddColumn:
                self.add_column(table, cmd.def_, existing)
            elif sub == AlterTableType.AT_AddConstraint:
                self.add_constraint(table, cmd.def_, existing)
            elif sub == AlterTableType.AT_ValidateConstraint:
                self.validate(table, cmd.name)
            elif not existing:
                continue
            elif sub == AlterTableType.AT_ColumnDefault and cmd.def_ is None:
                self.drop_default(table, cmd.name)
            elif sub == AlterTableType.AT_AlterColumnType:
                new = _type_name(cmd.def_.typeName)
                old = self.ctx.old_types.get((table, cmd.name))
                if not safe_type_change(old, new):
                    was = f" from {old}" if old else ""
                    self.hit(
                        "column-type-change",
                        f"Column {cmd.name!r} of {table!r} changes type{was} to {new}.",
                    )
            elif sub == AlterTableType.AT_SetNotNull:
                if (table, cmd.name) not in self.ctx.proven_not_null:
                    self.hit(
                        "set-not-null",
                        f"Column {cmd.name!r} of existing table {table!r} is made NOT NULL "
                        "by scanning the table.",
                    )
            elif sub == AlterTableType.AT_DropColumn:
                self.hit("drop-column", f"Column {cmd.name!r} of {table!r} is dropped.")

    def validate(self, table: str, name: str) -> None:
        rule_id = self.ctx.not_valid.get((table, name))
        if rule_id is not None and self.ctx.atomic:
            self.hit(
                rule_id,
                f"Constraint {name!r} on existing table {table!r} is added NOT VALID and "
                "validated in the same transaction (atomic migration): the lock of the ADD is "
                "held for the whole scan. Set atomic = False.",
            )
        column = self.ctx.not_null_checks.get((table, name))
        if column:
            self.ctx.proven_not_null.add((table, column))

    def drop_default(self, table: str, column: str) -> None:
        not_null = self.ctx.added_defaults.pop((table, column), None)
        if not_null is None:
            return
        if not_null:
            self.hit(
                "not-null-without-db-default",
                f"NOT NULL column {column!r} is added to existing table {table!r} with a "
                "default that is dropped right after (Django's default=): INSERTs from the "
                "code still running fail.",
            )
        else:
            self.hit(
                "default-not-db-default",
                f"Column {column!r} is added to {table!r} with a default that is dropped "
                "right after (Django's default=): rows the old code inserts get NULL.",
            )

    def add_column(self, table: str, column: Any, existing: bool) -> None:
        constraints = column.constraints or ()
        kinds = {c.contype for c in constraints}
        for c in constraints:
            if c.contype == ConstrType.CONSTR_DEFAULT:
                func = _volatile(c.raw_expr)
                if func and existing:
                    self.hit(
                        "volatile-default",
                        f"Column {column.colname!r} is added to {table!r} with a volatile "
                        f"default ({func}()): the table is rewritten.",
                    )
            elif c.contype == ConstrType.CONSTR_FOREIGN and existing and not c.skip_validation:
                self.hit(
                    "fk-not-valid-missing",
                    f"Column {column.colname!r} is added to {table!r} with a foreign key "
                    "validated at once: both tables are locked while the table is scanned.",
                )
            elif c.contype in (ConstrType.CONSTR_UNIQUE, ConstrType.CONSTR_PRIMARY) and existing:
                self.hit(
                    "unique-constraint-on-existing-table",
                    f"Column {column.colname!r} is added to {table!r} with a UNIQUE/PRIMARY "
                    "KEY constraint.",
                )
        if existing and ConstrType.CONSTR_DEFAULT in kinds:
            self.ctx.added_defaults[(table, column.colname)] = ConstrType.CONSTR_NOTNULL in kinds
        if (
            existing
            and ConstrType.CONSTR_NOTNULL in kinds
            and ConstrType.CONSTR_DEFAULT not in kinds
            and column.identity in ("\x00", "", None)
        ):
            self.hit(
                "not-null-without-db-default",
                f"Column {column.colname!r} is added to existing table {table!r} as NOT NULL "
                "without a database default.",
            )

    def add_constraint(self, table: str, c: Any, existing: bool) -> None:
        if c.contype == ConstrType.CONSTR_CHECK:
            column = _is_not_null_check(c)
            if column and c.conname:
                self.ctx.not_null_checks[(table, c.conname)] = column
        if not existing:
            return
        name = c.conname or ""
        if c.skip_validation and c.conname:
            kind = (
                "fk-not-valid-missing"
                if c.contype == ConstrType.CONSTR_FOREIGN
                else "set-not-null"
                if _is_not_null_check(c)
                else "check-constraint-not-valid-missing"
            )
            self.ctx.not_valid[(table, c.conname)] = kind
        if c.contype == ConstrType.CONSTR_FOREIGN and not c.skip_validation:
            self.hit(
                "fk-not-valid-missing",
                f"Foreign key {name!r} on {table!r} is added without NOT VALID: both tables "
                "are locked while every row is checked.",
            )
        elif c.contype == ConstrType.CONSTR_CHECK and not c.skip_validation:
            self.hit(
                "check-constraint-not-valid-missing",
                f"CHECK constraint {name!r} on {table!r} is added without NOT VALID.",
            )
        elif c.contype in (ConstrType.CONSTR_UNIQUE, ConstrType.CONSTR_PRIMARY) and not c.indexname:
            self.hit(
                "unique-constraint-on-existing-table",
                f"Constraint {name!r} on existing table {table!r} builds its index under an "
                "ACCESS EXCLUSIVE lock (add it USING INDEX built concurrently).",
            )
        elif c.contype == ConstrType.CONSTR_EXCLUSION:
            self.hit(
                "exclusion-constraint",
                f"Exclusion constraint {name!r} is added to existing table {table!r}.",
            )


def check(statements: list[str], ctx: SqlContext) -> tuple[list[Hit], list[Statement]]:
    """Judge each collected statement string (comments such as Django's ``-- ...`` lines are
    skipped); returns the hits and the parsed statements (for callers that classify them)."""
    checker = _Checker(ctx)
    parsed: list[Statement] = []
    for index, text in enumerate(statements):
        if not text.strip() or (text.lstrip().startswith("--") and "\n" not in text.strip()):
            continue
        checker.index = index
        for stmt in split(text):
            if stmt.node is None and stmt.error is None:
                continue
            parsed.append(stmt)
            checker.statement(stmt)
    return checker.hits, parsed
