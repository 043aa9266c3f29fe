"""Read one statement into operations.

sqlglot (postgres dialect) parses most statements into a syntax tree. For what it leaves as a raw `Command`
(`ALTER TYPE ... ADD VALUE`, `VALIDATE CONSTRAINT`, `CREATE FUNCTION`, `VACUUM`, ...) or cannot parse at all,
a token-level recogniser reads the statement's shape instead. What neither understands becomes an
`Unrecognized` operation, which the rules report as "needs manual review": never silently safe.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace

from sqlglot import exp
from sqlglot.dialects.postgres import Postgres
from sqlglot.errors import SqlglotError
from sqlglot.tokenizer_core import Token, TokenType

from bot.analysis import operations as op
from bot.analysis.splitter import RawStatement
from bot.analysis.views import columns_read

# sqlglot announces every fallback to `Command` on its logger; those lines are for sqlglot's developers.
logging.getLogger("sqlglot").setLevel(logging.CRITICAL)

_DIALECT = Postgres()
# One tokenizer and one parser for every statement: each call starts from a clean state, and building them
# anew cost as much as tokenizing a typical statement.
_TOKENIZER = _DIALECT.tokenizer()
_PARSER = _DIALECT.parser()
DEFAULT_SCHEMA = "public"


@dataclass(frozen=True)
class ConstraintGuard:
    """`IF [NOT] EXISTS (SELECT ... FROM pg_constraint WHERE conname = '...')` (or the same question of
    `information_schema.table_constraints`): whether a constraint of that name exists decides the branch."""

    constraint: str
    # The table the query asks about, by bare name (None: a constraint of that name on any table).
    table: str | None
    # IF EXISTS: the branch runs when the constraint exists; IF NOT EXISTS: when it does not.
    runs_if_exists: bool


@dataclass(frozen=True)
class BlockStatement:
    """One SQL statement of a DO block's body: where it stands, what it does, the guards it runs under."""

    # Offsets into the block's body, its `;` left out.
    start: int
    end: int
    operations: tuple[op.Operation, ...]
    # Each operation as a statement of its own ("" where it cannot be cut out of the statement).
    parts: tuple[str, ...]
    # The IF guards around it, outermost first.
    guards: tuple[ConstraintGuard, ...] = ()


@dataclass(frozen=True)
class DoBlock:
    """A `DO` block as text around its body, and the SQL statements of the body."""

    head: str
    body: str
    tail: str
    statements: tuple[BlockStatement, ...]
    # Why the body is more than SQL statements under IF guards zdm can read, if it is (a loop, EXCEPTION,
    # variables, a condition of another kind): such a block runs its statements as only its code decides.
    procedural: str | None = None

    @property
    def quote(self) -> str:
        """The dollar quote around the body (`$$`, `$body$`): SQL put in the body must not hold it."""
        return self.head[self.head.rfind("$", 0, len(self.head) - 1) :]

    def text(self, replacements: dict[int, tuple[str, ...]]) -> str:
        """The block with statement `n` of its body replaced by `replacements[n]` (an empty tuple leaves
        PL/pgSQL's `NULL`, a statement that does nothing)."""
        pieces: list[str] = []
        at = 0
        for number, statement in enumerate(self.statements):
            if number not in replacements:
                continue
            # Statements the replacement adds go on lines of their own, indented as the statement was.
            before = self.body[self.body.rfind("\n", 0, statement.start) + 1 : statement.start]
            separator = f";\n{before}" if not before.strip() else "; "
            pieces += [self.body[at : statement.start], separator.join(replacements[number]) or "NULL"]
            at = statement.end
        return self.head + "".join(pieces) + self.body[at:] + self.tail


@dataclass(frozen=True)
class ParsedStatement:
    kind: str
    operations: tuple[op.Operation, ...]
    # Each operation as a statement of its own, when the statement can be split (for rewrites); else None.
    parts: tuple[str, ...] | None = None
    # A DO block's body, read statement by statement.
    block: DoBlock | None = None


# ---------------------------------------------------------------------------------------------- names


def _ident(node: exp.Expression | str | None) -> str:
    """An identifier as PostgreSQL stores it: quoted names keep their case, unquoted ones fold to lower."""
    if node is None:
        return ""
    if isinstance(node, str):
        return node
    if isinstance(node, exp.Identifier):
        text = str(node.this)
        return text if node.quoted else text.lower()
    if isinstance(node, (exp.Column, exp.Table)) and isinstance(node.this, exp.Identifier):
        return _ident(node.this)
    if isinstance(node, exp.Literal):
        return str(node.this)
    return node.name if node.name else node.sql(dialect="postgres")


def qualified(name: str, schema: str | None) -> str:
    """The key zdm uses for a table or type: `User` in the default schema, `auth.users` elsewhere."""
    if schema and schema != DEFAULT_SCHEMA:
        return f"{schema}.{name}"
    return name


def _table_key(node: exp.Expression | None) -> str:
    if node is None:
        return ""
    if isinstance(node, exp.Schema):
        return _table_key(node.this)
    if isinstance(node, exp.Table):
        db = node.args.get("db")
        return qualified(_ident(node.this), _ident(db) if db is not None else None)
    return _ident(node)


# ---------------------------------------------------------------------------------------------- types

_TYPE_ALIASES = {
    "int": "int4",
    "integer": "int4",
    "bigint": "int8",
    "smallint": "int2",
    "serial": "serial",
    "bigserial": "bigserial",
    "smallserial": "smallserial",
    "varchar": "varchar",
    "nvarchar": "varchar",
    "char": "bpchar",
    "nchar": "bpchar",
    "text": "text",
    "decimal": "numeric",
    "numeric": "numeric",
    "double": "float8",
    "float": "float4",
    "real": "float4",
    "boolean": "bool",
    "timestamp": "timestamp",
    "timestampntz": "timestamp",
    "timestamptz": "timestamptz",
    "timestampltz": "timestamptz",
    "time": "time",
    "timetz": "timetz",
    "varbinary": "bytea",
    "binary": "bytea",
    "blob": "bytea",
    "json": "json",
    "jsonb": "jsonb",
    "uuid": "uuid",
    "date": "date",
    "interval": "interval",
    "inet": "inet",
    "money": "money",
    "xml": "xml",
}


# Enum members' `.name` is a descriptor lookup; a statement with fifty columns asks for it fifty times.
_TYPE_NAMES = {member: member.name.lower() for member in exp.DataType.Type}


def type_spec(dtype: exp.Expression | None) -> op.TypeSpec | None:
    if not isinstance(dtype, exp.DataType):
        return None
    dims = 0
    while dtype.this == exp.DataType.Type.ARRAY and dtype.expressions:
        dims += 1
        inner = dtype.expressions[0]
        if not isinstance(inner, exp.DataType):
            return None
        dtype = inner
    if dtype.this == exp.DataType.Type.USERDEFINED:
        kind = dtype.args.get("kind")
        name = (
            _ident(kind) if isinstance(kind, exp.Identifier) else str(kind or dtype.sql(dialect="postgres"))
        )
        if isinstance(kind, exp.Identifier) and not kind.quoted:
            name = _normalise_unquoted_type_name(name)
        elif isinstance(kind, exp.Dot) and isinstance(kind.expression, exp.Identifier):
            # `"public"."Role"`, `auth."Kind"`: the key zdm gives the type (`Role`, `auth.Kind`).
            name = qualified(_ident(kind.expression), _ident(kind.this) if kind.this else None)
        return op.TypeSpec(name, (), dims, user_defined=True)
    raw = _TYPE_NAMES.get(dtype.this) or str(dtype.this).lower()
    params: list[int] = []
    for param in dtype.expressions:
        value = param.this if isinstance(param, exp.DataTypeParam) else param
        if isinstance(value, exp.Literal) and not value.is_string:
            try:
                params.append(int(str(value.this)))
            except ValueError:
                return op.TypeSpec(dtype.sql(dialect="postgres").lower(), (), dims)
    base = _TYPE_ALIASES.get(raw)
    if base is None:
        base = dtype.sql(dialect="postgres").lower().split("(")[0]
    return op.TypeSpec(base, tuple(params), dims)


def _normalise_unquoted_type_name(name: str) -> str:
    if "." in name:
        schema, _, bare = name.rpartition(".")
        return qualified(bare.strip('"'), schema.strip('"'))
    return name.lower()


# ---------------------------------------------------------------------------------------------- defaults

# Functions PostgreSQL marks VOLATILE: a DEFAULT calling one is evaluated per row, so adding such a column
# rewrites the table. User-defined functions are VOLATILE unless declared otherwise, so unknown names count too.
_NON_VOLATILE_FUNCTIONS = frozenset(
    {
        "now",
        "current_timestamp",
        "current_date",
        "current_time",
        "localtimestamp",
        "localtime",
        "transaction_timestamp",
        "statement_timestamp",
        "current_user",
        "session_user",
        "current_schema",
        "lower",
        "upper",
        "concat",
        "coalesce",
        "to_jsonb",
        "to_json",
        "jsonb_build_object",
        "json_build_object",
        "jsonb_build_array",
        "json_build_array",
        "array",
        "make_interval",
        "timezone",
        "date_trunc",
        "to_timestamp",
        "length",
        "abs",
        "round",
        "floor",
        "ceil",
        "btrim",
        "replace",
    }
)
_VOLATILE_NODES: tuple[type[exp.Expression], ...] = (exp.Rand, exp.Uuid)


def default_spec(node: exp.Expression | None) -> op.DefaultSpec | None:
    if node is None:
        return None
    return op.DefaultSpec(volatile=_is_volatile(node), node=node)


def _is_volatile(node: exp.Expression) -> bool:
    for sub in node.walk():
        if isinstance(sub, _VOLATILE_NODES):
            return True
        if isinstance(sub, exp.Anonymous):
            name = str(sub.this).lower().rsplit(".", 1)[-1].strip('"')
            if name not in _NON_VOLATILE_FUNCTIONS:
                return True
        elif isinstance(sub, (exp.Subquery, exp.Select)):
            return True
    return False


# ---------------------------------------------------------------------------------------------- entry point


def parse_statement(raw: RawStatement, source: str) -> ParsedStatement:
    """`source` is the whole file the statement came from: sqlglot slices Command text out of it."""
    parsed = _parse_statement(raw, source)
    unread = any(isinstance(o, op.Unrecognized) for o in parsed.operations)
    if unread and not _CONSTRAINT_SYNTAX.search(raw.text):
        operations = tuple(
            replace(o, may_add_constraints=False) if isinstance(o, op.Unrecognized) else o
            for o in parsed.operations
        )
        parsed = replace(parsed, operations=operations)
    if len(parsed.operations) == 1 and parsed.parts is None:
        return replace(parsed, parts=(raw.text.rstrip().rstrip(";").rstrip(),))
    return parsed


# What a statement that adds a constraint says somewhere (dynamic SQL included, unless it builds the words).
_CONSTRAINT_SYNTAX = re.compile(r"\b(?:CONSTRAINT|REFERENCES|UNIQUE|PRIMARY|CHECK|EXCLUDE)\b", re.IGNORECASE)


def _parse_statement(raw: RawStatement, source: str) -> ParsedStatement:
    tokens: list[Token]
    if raw.tokens is not None:
        tokens = list(raw.tokens)
        text = source
    else:
        try:
            tokens = _TOKENIZER.tokenize(raw.text)
        except (SqlglotError, ValueError, IndexError):
            return ParsedStatement("unparseable", (op.Unrecognized("the statement could not be tokenized"),))
        text = raw.text
    if not tokens:
        return ParsedStatement("empty", ())
    try:
        tree = _parse_tokens(tokens, text)
    except (SqlglotError, ValueError, IndexError, TypeError, AttributeError, RecursionError):
        tree = None
    if tree is not None and not isinstance(tree, exp.Command):
        try:
            operations = tuple(_from_tree(tree))
        except _NotUnderstood as problem:
            fallback = _from_tokens(tokens, text)
            if all(not isinstance(o, op.Unrecognized) for o in fallback.operations):
                return fallback
            operations = (op.Unrecognized(str(problem)),)
        if operations:
            return ParsedStatement(_kind(tree), operations, _split_parts(tree, operations, tokens, text))
    return _from_tokens(tokens, text)


def _split_parts(
    tree: exp.Expression, operations: tuple[op.Operation, ...], tokens: Sequence[Token], source: str
) -> tuple[str, ...] | None:
    """`ALTER TABLE t a, b, c` as `ALTER TABLE t a`, `ALTER TABLE t b`...: Prisma's multi-column changes, cut
    from the original text so each keeps its spelling."""
    if not isinstance(tree, exp.Alter) or len(operations) < 2:
        return None
    words = _Words(tokens, source)
    if not words.accept("ALTER", "TABLE"):
        return None
    words.skip_if_exists()
    words.accept("ONLY")
    try:
        words.name()
    except _NotUnderstood:
        return None
    prefix = source[tokens[0].start : words.tokens[words.pos - 1].end + 1]
    actions = _split_top_level(words.tokens[words.pos :])
    if len(actions) != len(operations):
        return None
    return tuple(f"{prefix} {source[a[0].start : a[-1].end + 1]}" for a in actions)


def _parse_tokens(tokens: list[Token], text: str) -> exp.Expression | None:
    expressions = _PARSER.parse(tokens, text)
    real = [e for e in expressions if isinstance(e, exp.Expression)]
    if len(real) != 1:
        return None
    return real[0]


def _kind(tree: exp.Expression) -> str:
    if isinstance(tree, (exp.Create, exp.Drop, exp.Alter)):
        return f"{tree.key} {str(tree.args.get('kind') or '').lower()}".strip()
    return tree.key


class _NotUnderstood(Exception):
    pass


# ---------------------------------------------------------------------------------------------- syntax tree


def _from_tree(tree: exp.Expression) -> Iterator[op.Operation]:
    if isinstance(tree, exp.Create):
        yield from _create(tree)
    elif isinstance(tree, exp.Alter):
        yield from _alter(tree)
    elif isinstance(tree, exp.Drop):
        yield from _drop(tree)
    elif isinstance(tree, exp.TruncateTable):
        yield op.Truncate(tuple(_table_key(t) for t in tree.expressions))
    elif isinstance(tree, (exp.Update, exp.Delete, exp.Insert, exp.Merge)):
        yield _data_change(tree)
        # Data-modifying CTEs (`WITH updated AS (UPDATE ...) INSERT ...`) change rows too.
        for nested in tree.find_all(exp.Update, exp.Delete, exp.Insert):
            if nested is not tree:
                yield _data_change(nested)
    elif isinstance(tree, exp.Select) and isinstance(tree.args.get("into"), exp.Into):
        # SELECT ... INTO creates a table from the query.
        into = tree.args["into"]
        query = tree.copy()
        query.set("into", None)
        yield op.CreateTable(
            _table_key(into.this), reads=_reads(query), temporary=bool(into.args.get("temporary"))
        )
    elif isinstance(tree, (exp.Select, exp.Union)):
        yield op.DataChange("select", None, reads=_reads(tree))
    elif isinstance(tree, exp.Set):
        yield from _set(tree)
    elif isinstance(tree, exp.Transaction):
        yield op.TransactionControl("begin")
    elif isinstance(tree, exp.Commit):
        yield op.TransactionControl("commit")
    elif isinstance(tree, exp.Rollback):
        yield op.TransactionControl("rollback")
    elif isinstance(tree, exp.Comment):
        yield _comment(tree)
    elif isinstance(tree, (exp.Grant, exp.Revoke)):
        yield op.CatalogOnly("privileges")
    else:
        raise _NotUnderstood(f"zdm does not know the statement type {tree.key.upper()}")


def _create(tree: exp.Create) -> Iterator[op.Operation]:
    kind = str(tree.args.get("kind") or "").upper()
    target = tree.this
    if kind == "TABLE":
        yield _create_table(tree)
    elif kind == "INDEX" and isinstance(target, exp.Index):
        params = target.args.get("params")
        columns = (
            tuple(
                dict.fromkeys(
                    _ident(c)
                    for element in (params.args.get("columns") or [])
                    for c in element.find_all(exp.Column)
                )
            )
            if params
            else ()
        )
        yield op.CreateIndex(
            name=_ident(target.this) or None,
            on=_table_key(target.args.get("table")),
            unique=bool(tree.args.get("unique")),
            concurrently=bool(tree.args.get("concurrently")),
            columns=columns,
            if_not_exists=bool(tree.args.get("exists")),
            tree=tree,
        )
    elif kind == "TYPE":
        expression = tree.args.get("expression")
        name = _table_key(target)
        if isinstance(expression, exp.DataType) and expression.this == exp.DataType.Type.ENUM:
            yield op.CreateEnum(name, tuple(str(v.this) for v in expression.expressions))
        else:
            yield op.CatalogOnly("type")
    elif kind == "VIEW":
        properties = tree.args.get("properties")
        materialized = bool(properties and properties.find(exp.MaterializedProperty))
        yield op.CreateView(
            _table_key(target),
            materialized=materialized,
            replace=bool(tree.args.get("replace")),
            reads=_reads(tree.args.get("expression")),
            columns=columns_read(tree.args.get("expression"), _table_key, _ident),
        )
    elif kind == "TRIGGER":
        trigger = tree.find(exp.TriggerProperties)
        if trigger is None:
            raise _NotUnderstood("CREATE TRIGGER without a table")
        yield op.Trigger(on=_table_key(trigger.args.get("table")), action="create", name=_ident(target))
    elif kind in ("SCHEMA", "SEQUENCE", "FUNCTION", "PROCEDURE", "DOMAIN", "EXTENSION", "DATABASE", "ROLE"):
        yield op.CatalogOnly(kind.lower())
    else:
        raise _NotUnderstood(f"zdm does not know CREATE {kind}")


def _create_table(tree: exp.Create) -> op.CreateTable:
    target = tree.this
    columns: list[op.ColumnSpec] = []
    constraints: list[op.ConstraintSpec] = []
    reads = _reads(tree.args.get("expression"))
    partitioned = temporary = False
    partition_of: str | None = None
    # The table's own items and properties, not a search of the whole tree: a CREATE TABLE is the largest
    # tree a migration holds, and these sit at known places in it.
    properties = tree.args.get("properties")
    items = [
        *(target.expressions if isinstance(target, exp.Schema) else ()),
        *(properties.expressions if isinstance(properties, exp.Properties) else ()),
    ]
    for item in items:
        if isinstance(item, exp.ColumnDef):
            columns.append(column_spec(item))
        elif isinstance(item, exp.Constraint):
            constraints.extend(_constraints(item))
        elif isinstance(
            item,
            (
                exp.PrimaryKey,
                exp.ForeignKey,
                exp.UniqueColumnConstraint,
                exp.CheckColumnConstraint,
                exp.ExcludeColumnConstraint,
            ),
        ):
            constraints.extend(_constraint_parts(None, [item]))
        elif isinstance(item, exp.LikeProperty):
            reads = (*reads, _table_key(item.this))
        elif isinstance(item, exp.PartitionedByProperty):
            partitioned = True
        elif isinstance(item, exp.PartitionedOfProperty):
            partition_of = _table_key(item.this)
        elif isinstance(item, exp.TemporaryProperty):
            temporary = True
    return op.CreateTable(
        _table_key(target), tuple(columns), tuple(constraints), reads, partitioned, partition_of, temporary
    )


def column_spec(item: exp.ColumnDef) -> op.ColumnSpec:
    not_null = primary_key = unique = check = False
    default: op.DefaultSpec | None = None
    generated: str | None = None
    generated_from: frozenset[str] | None = None
    references: op.ForeignKeySpec | None = None
    name = _ident(item.this)
    for constraint in item.args.get("constraints") or []:
        kind = constraint.args.get("kind")
        if isinstance(kind, exp.NotNullColumnConstraint):
            not_null = not kind.args.get("allow_null")
        elif isinstance(kind, exp.DefaultColumnConstraint):
            default = default_spec(kind.this)
        elif isinstance(kind, exp.PrimaryKeyColumnConstraint):
            primary_key = True
            not_null = True
        elif isinstance(kind, exp.UniqueColumnConstraint):
            unique = True
        elif isinstance(kind, exp.GeneratedAsIdentityColumnConstraint):
            generated = "identity" if kind.args.get("this") is not None else "stored"
            if kind.args.get("expression") is not None:
                generated = "stored"
                generated_from = _columns_read(kind.args["expression"])
            not_null = True
        elif isinstance(kind, exp.ComputedColumnConstraint):
            # sqlglot reads `GENERATED ALWAYS AS (...) STORED` here (VIRTUAL falls back to a Command).
            generated = "stored"
            generated_from = _columns_read(kind.this) if isinstance(kind.this, exp.Expression) else None
        elif isinstance(kind, exp.Reference):
            ref = kind.this
            ref_cols = tuple(_ident(c) for c in ref.expressions) if isinstance(ref, exp.Schema) else ()
            references = op.ForeignKeySpec((name,), _table_key(ref), ref_cols, reference=kind)
        elif isinstance(kind, exp.CheckColumnConstraint):
            check = True
        elif isinstance(kind, (exp.CollateColumnConstraint, exp.CommentColumnConstraint)):
            continue
        elif kind is not None and not isinstance(kind, exp.NotForReplicationColumnConstraint):
            # Anything else (compression, storage) is metadata on a column being defined.
            continue
    spec = type_spec(item.args.get("kind"))
    if spec is not None and spec.base in ("serial", "bigserial", "smallserial"):
        not_null = True
    dtype = item.args.get("kind")
    type_node = dtype if isinstance(dtype, exp.Expression) else None
    return op.ColumnSpec(
        name,
        spec,
        not_null,
        default,
        generated,
        generated_from,
        primary_key,
        unique,
        references,
        check,
        type_node,
    )


def _columns_read(expression: exp.Expression) -> frozenset[str]:
    return frozenset(_ident(column.this) for column in expression.find_all(exp.Column))


def _constraints(node: exp.Constraint) -> list[op.ConstraintSpec]:
    return _constraint_parts(_ident(node.this) or None, node.expressions)


def _constraint_parts(name: str | None, parts: Sequence[exp.Expression]) -> list[op.ConstraintSpec]:
    specs: list[op.ConstraintSpec] = []
    for part in parts:
        if isinstance(part, exp.ForeignKey):
            reference = part.args.get("reference")
            ref = reference.this if reference is not None else None
            ref_cols = tuple(_ident(c) for c in ref.expressions) if isinstance(ref, exp.Schema) else ()
            fk = op.ForeignKeySpec(
                tuple(_ident(c) for c in part.expressions), _table_key(ref), ref_cols, reference=reference
            )
            specs.append(op.ConstraintSpec(name, "foreign_key", fk.columns, foreign_key=fk))
        elif isinstance(part, (exp.PrimaryKey, exp.PrimaryKeyColumnConstraint)):
            specs.append(op.ConstraintSpec(name, "primary_key", _constraint_columns(part), node=part))
        elif isinstance(part, exp.UniqueColumnConstraint):
            specs.append(op.ConstraintSpec(name, "unique", _constraint_columns(part), node=part))
        elif isinstance(part, exp.CheckColumnConstraint):
            specs.append(
                op.ConstraintSpec(name, "check", not_null_column=_proves_not_null(part.this), node=part)
            )
        elif isinstance(part, exp.ExcludeColumnConstraint):
            specs.append(op.ConstraintSpec(name, "exclude"))
        else:
            raise _NotUnderstood(f"zdm does not know the constraint {part.key.upper()}")
    return specs


def _constraint_columns(part: exp.Expression) -> tuple[str, ...]:
    target = part.this if isinstance(part.this, exp.Schema) else part
    return tuple(_ident(c.this if isinstance(c, exp.Ordered) else c) for c in target.expressions)


def _proves_not_null(condition: exp.Expression | None) -> str | None:
    while isinstance(condition, exp.Paren):
        condition = condition.this
    if (
        isinstance(condition, exp.Is)
        and condition.args.get("negate")
        and isinstance(condition.expression, exp.Null)
    ):
        column = condition.this
        return _ident(column) if isinstance(column, exp.Column) else None
    if isinstance(condition, exp.Not) and isinstance(condition.this, exp.Is):
        inner = condition.this
        if isinstance(inner.expression, exp.Null) and isinstance(inner.this, exp.Column):
            return _ident(inner.this)
    return None


def _alter(tree: exp.Alter) -> Iterator[op.Operation]:
    kind = str(tree.args.get("kind") or "").upper()
    target = _table_key(tree.this)
    actions = tree.args.get("actions") or []
    if kind == "INDEX":
        for action in actions:
            if isinstance(action, exp.AlterRename):
                yield op.RenameIndex(
                    target, _ident(action.this.this if isinstance(action.this, exp.Table) else action.this)
                )
            else:
                yield op.CatalogOnly("index option", weak_locks=())
        return
    if kind in ("VIEW", "SEQUENCE"):
        yield op.CatalogOnly(kind.lower())
        return
    if kind != "TABLE":
        raise _NotUnderstood(f"zdm does not know ALTER {kind}")
    not_valid = bool(tree.args.get("not_valid"))
    # `RENAME col TO new` (COLUMN is optional): sqlglot reads a rename of the table to `col`, `TO new` apart.
    renamed_to = next((o for o in tree.args.get("options") or [] if isinstance(o, exp.ToTableProperty)), None)
    if renamed_to is not None and len(actions) == 1 and isinstance(actions[0], exp.AlterRename):
        yield op.RenameColumn(target, _ident(actions[0].this), _ident(renamed_to.this))
        return
    for action in actions:
        yield from _alter_table_action(target, action, not_valid)


def _alter_table_action(table: str, action: exp.Expression, not_valid: bool) -> Iterator[op.Operation]:
    if isinstance(action, exp.ColumnDef):
        yield op.AddColumn(table, column_spec(action), if_not_exists=bool(action.args.get("exists")))
    elif isinstance(action, exp.AddConstraint):
        for constraint in action.expressions:
            if isinstance(constraint, exp.Constraint):
                specs = _constraints(constraint)
            else:
                specs = _constraint_parts(None, [constraint])
            for spec in specs:
                yield op.AddConstraint(table, spec, not_valid=not_valid)
    elif isinstance(action, exp.Drop):
        drop_kind = str(action.args.get("kind") or "").upper()
        for item in action.args.get("tables") or []:
            if drop_kind == "COLUMN":
                yield op.DropColumn(table, _ident(item))
            elif drop_kind == "CONSTRAINT":
                yield op.DropConstraint(table, _ident(item))
            else:
                raise _NotUnderstood(f"zdm does not know ALTER TABLE DROP {drop_kind}")
    elif isinstance(action, exp.AlterColumn):
        yield _alter_column(table, action)
    elif isinstance(action, exp.RenameColumn):
        yield op.RenameColumn(table, _ident(action.this), _ident(action.args.get("to")))
    elif isinstance(action, exp.AlterRename):
        new = action.this
        yield op.RenameTable(table, _table_key(new) if isinstance(new, exp.Table) else _ident(new))
    elif isinstance(action, exp.AlterSet):
        option = action.args.get("option")
        word = option.sql().upper() if option is not None else ""
        if word in ("LOGGED", "UNLOGGED"):
            yield op.SetLogged(table, logged=word == "LOGGED")
        else:
            raise _NotUnderstood(f"zdm does not know ALTER TABLE SET {action.sql()[:40]}")
    else:
        raise _NotUnderstood(f"zdm does not know the ALTER TABLE action {action.key.upper()}")


def _alter_column(table: str, action: exp.AlterColumn) -> op.Operation:
    column = _ident(action.this)
    args = action.args
    if args.get("dtype") is not None:
        using = args.get("using") or None  # sqlglot stores an absent USING as False
        casts = _using_casts(using, column) if using is not None else ()
        return op.AlterColumnType(
            table,
            column,
            new_type=type_spec(args["dtype"]),
            using_expression=casts is None,
            using_casts=casts or (),
        )
    if args.get("allow_null") is False and not args.get("drop"):
        return op.SetNotNull(table, column)
    if args.get("drop") and args.get("allow_null"):
        return op.DropNotNull(table, column)
    if args.get("default") is not None:
        return op.SetDefault(table, column, default_spec(args["default"]))
    if args.get("drop"):
        return op.DropDefault(table, column)
    raise _NotUnderstood(f"zdm does not know ALTER COLUMN {action.sql()[:60]}")


def _using_casts(using: exp.Expression, column: str) -> tuple[op.TypeSpec | None, ...] | None:
    """For USING "col", "col"::a, "col"::a::b...: the types cast to, innermost first (None: a type zdm cannot
    read). None when USING is any other expression."""
    casts: list[op.TypeSpec | None] = []
    node = using
    while isinstance(node, (exp.Paren, exp.Cast)):
        if isinstance(node, exp.Cast):
            casts.append(type_spec(node.args.get("to")))
        node = node.this
    if not (isinstance(node, exp.Column) and _ident(node) == column):
        return None
    return tuple(reversed(casts))


def _drop(tree: exp.Drop) -> Iterator[op.Operation]:
    kind = str(tree.args.get("kind") or "").upper()
    cascade = bool(tree.args.get("cascade"))
    for item in tree.args.get("tables") or []:
        name = _table_key(item)
        if kind == "TABLE":
            yield op.DropTable(name, cascade=cascade)
        elif kind == "INDEX":
            yield op.DropIndex(name, concurrently=bool(tree.args.get("concurrently")), cascade=cascade)
        elif kind == "TYPE":
            yield op.DropType(name, cascade=cascade)
        elif kind == "VIEW":
            yield op.DropView(name, materialized=bool(tree.args.get("materialized")))
        elif kind == "TRIGGER":
            on = tree.args.get("cluster")
            if not isinstance(on, exp.OnProperty):
                raise _NotUnderstood("DROP TRIGGER without a table")
            yield op.Trigger(on=_table_key(on.this), action="drop", name=_ident(item))
        elif kind in ("SCHEMA", "SEQUENCE", "FUNCTION", "PROCEDURE", "EXTENSION", "DOMAIN", "ROLE"):
            yield op.CatalogOnly(f"drop {kind.lower()}")
        else:
            raise _NotUnderstood(f"zdm does not know DROP {kind}")


def _data_change(tree: exp.Expression) -> op.DataChange:
    target_node = tree.this
    target = _table_key(target_node) if target_node is not None else None
    kind = tree.key
    where = tree.args.get("where") is not None
    reads = tuple(t for t in _reads(tree) if t != target)
    values_only = isinstance(tree, exp.Insert) and isinstance(tree.expression, exp.Values) and not reads
    return op.DataChange(kind, target, reads=reads, has_where=where, values_only=values_only, tree=tree)


def _reads(tree: exp.Expression | None) -> tuple[str, ...]:
    if tree is None:
        return ()
    ctes = set()
    tables: list[exp.Table] = []
    # One walk of the tree for both: an INSERT of seed data can hold thousands of nodes.
    for node in tree.find_all(exp.CTE, exp.Table):
        if isinstance(node, exp.CTE):
            alias = node.args.get("alias")
            ctes.add(_ident(alias.this) if isinstance(alias, exp.TableAlias) else str(node.alias))
        elif isinstance(node, exp.Table) and isinstance(node.this, exp.Identifier):
            tables.append(node)
    seen: dict[str, None] = {}
    for table in tables:
        key = _table_key(table)
        if key and key not in ctes and not key.startswith(("pg_", "information_schema.", "pg_catalog.")):
            seen.setdefault(key, None)
    return tuple(seen)


def _set(tree: exp.Set) -> Iterator[op.Operation]:
    for item in tree.expressions:
        assignment = item.this
        local = str(item.args.get("kind") or "").upper() == "LOCAL"
        if isinstance(assignment, exp.EQ):
            yield op.SetSetting(
                _ident(assignment.this).lower(), assignment.expression.sql(dialect="postgres"), local
            )
        else:
            yield op.SetSetting(item.sql(dialect="postgres").lower(), "", local)


def _comment(tree: exp.Comment) -> op.Operation:
    kind = str(tree.args.get("kind") or "").upper()
    target = tree.this
    text = tree.args.get("expression")
    comment_sql = (
        None
        if not isinstance(text, exp.Expression) or isinstance(text, exp.Null)
        else str(text.sql(dialect="postgres"))
    )
    if kind == "TABLE":
        return op.CatalogOnly("comment", weak_locks=((_table_key(target), "SHARE_UPDATE_EXCLUSIVE"),))
    if kind == "COLUMN" and isinstance(target, exp.Column):
        db = target.args.get("db")
        table = qualified(_ident(target.args.get("table")), _ident(db) if db is not None else None)
        return op.CatalogOnly(
            "comment",
            weak_locks=((table, "SHARE_UPDATE_EXCLUSIVE"),),
            comment_on=("column", table, _ident(target.this)),
            comment_sql=comment_sql,
        )
    if kind == "INDEX" and isinstance(target, exp.Table):
        return op.CatalogOnly("comment", comment_on=("index", _table_key(target)), comment_sql=comment_sql)
    return op.CatalogOnly("comment")


# ---------------------------------------------------------------------------------------------- token shapes


class _PlainTokenizer(Postgres.Tokenizer):
    # sqlglot turns everything after a "command" keyword (REFRESH, DO, ANALYZE...) into one string token;
    # the recogniser needs the words.
    COMMANDS = set()  # noqa: RUF012 - overrides sqlglot's class attribute


class _Words:
    """A cursor over a statement's tokens, for the shapes sqlglot leaves as raw commands."""

    def __init__(self, tokens: Sequence[Token], source: str) -> None:
        # Multi-word keywords ("PRIMARY KEY") arrive as one token; the recogniser matches word by word.
        expanded: list[Token] = []
        for token in tokens:
            parts = token.text.split() if token.token_type not in _QUOTED else [token.text]
            if len(parts) > 1:
                expanded.extend(
                    Token(token.token_type, part, token.line, token.col, token.start, token.end)
                    for part in parts
                )
            else:
                expanded.append(token)
        self.tokens = expanded
        self.source = source
        self.pos = 0

    def peek(self, offset: int = 0) -> Token | None:
        index = self.pos + offset
        return self.tokens[index] if index < len(self.tokens) else None

    def word(self, offset: int = 0) -> str:
        token = self.peek(offset)
        if token is None or token.token_type in (TokenType.IDENTIFIER, TokenType.STRING):
            return ""
        return token.text.upper()

    def accept(self, *words: str) -> bool:
        for i, word in enumerate(words):
            if self.word(i) != word:
                return False
        self.pos += len(words)
        return True

    def done(self) -> bool:
        return self.pos >= len(self.tokens)

    def name(self) -> str:
        """A possibly schema-qualified name, normalised like `_table_key`."""
        parts = [self._name_part()]
        while self.word() == "." and self.peek(1) is not None:
            self.pos += 1
            parts.append(self._name_part())
        if len(parts) >= 2:
            return qualified(parts[-1], parts[-2])
        return parts[0]

    def _name_part(self) -> str:
        token = self.peek()
        if token is None:
            raise _NotUnderstood("a name was expected")
        self.pos += 1
        if token.token_type is TokenType.IDENTIFIER:
            return str(token.text)
        if token.token_type is TokenType.STRING:
            return str(token.text)
        return str(token.text).lower()

    def string(self) -> str:
        token = self.peek()
        if token is None:
            raise _NotUnderstood("a value was expected")
        self.pos += 1
        return str(token.text)

    def rest_text(self) -> str:
        if self.done():
            return ""
        return self.source[self.tokens[self.pos].start : self.tokens[-1].end + 1]

    def skip_if_exists(self) -> None:
        self.accept("IF", "EXISTS") or self.accept("IF", "NOT", "EXISTS")


_COMMAND_TOKENS = frozenset(Postgres.Tokenizer.COMMANDS)
_QUOTED = (TokenType.IDENTIFIER, TokenType.STRING, TokenType.HEREDOC_STRING, TokenType.NATIONAL_STRING)


def _from_tokens(tokens: Sequence[Token], source: str) -> ParsedStatement:
    if tokens and tokens[0].token_type in _COMMAND_TOKENS:
        source = source[tokens[0].start : tokens[-1].end + 1]
        try:
            tokens = _PlainTokenizer().tokenize(source)
        except (SqlglotError, ValueError, IndexError):
            return ParsedStatement("unparseable", (op.Unrecognized("the statement could not be tokenized"),))
    words = _Words(tokens, source)
    head = words.word()
    if words.accept("DO"):
        return _do_statement(words)
    try:
        operations = list(_recognise(words, head))
    except _NotUnderstood as problem:
        operations = [op.Unrecognized(str(problem))]
    return ParsedStatement(f"{head.lower()} (recognised)", tuple(operations))


def _recognise(words: _Words, head: str) -> Iterator[op.Operation]:
    if words.accept("ALTER", "TYPE"):
        yield _alter_type(words)
    elif words.accept("ALTER", "TABLE"):
        yield from _alter_table_words(words)
    elif words.word() == "CREATE":
        yield from _create_words(words)
    elif words.word() == "DROP":
        yield from _drop_words(words)
    elif words.accept("LOCK"):
        yield _lock_table(words)
    elif head in ("INSERT", "UPDATE", "DELETE", "MERGE"):
        yield _data_change_words(words, head)
    elif words.accept("VACUUM"):
        yield _vacuum_words(words)
    elif words.accept("ANALYZE") or words.accept("ANALYSE"):
        yield op.Maintenance("analyze", _name_list(words))
    elif words.accept("CLUSTER"):
        if words.done():
            yield op.Maintenance("cluster")
        else:
            yield op.Maintenance("cluster", (words.name(),))
    elif words.accept("REFRESH", "MATERIALIZED", "VIEW"):
        concurrently = words.accept("CONCURRENTLY")
        yield op.RefreshMaterializedView(words.name(), concurrently=concurrently)
    elif words.accept("REINDEX"):
        yield _reindex_words(words)
    elif words.accept("SET") or words.accept("RESET"):
        local = words.accept("LOCAL") or (words.accept("SESSION") and False)
        yield op.SetSetting(words.rest_text().lower(), "", local)
    elif (
        words.accept("ALTER", "SEQUENCE")
        or words.accept("ALTER", "FUNCTION")
        or words.accept("ALTER", "SCHEMA")
    ):
        yield op.CatalogOnly(words.word(-2).lower() if words.pos >= 2 else "object")
    elif words.accept("ALTER", "PUBLICATION") or words.accept("ALTER", "SUBSCRIPTION"):
        yield op.CatalogOnly("publication")
    elif words.accept("ALTER", "EXTENSION") or words.accept("ALTER", "DEFAULT", "PRIVILEGES"):
        yield op.CatalogOnly("extension or privileges")
    elif words.accept("ALTER", "ROLE") or words.accept("ALTER", "DATABASE") or words.accept("ALTER", "USER"):
        yield op.CatalogOnly("role or database setting")
    elif words.accept("ALTER", "INDEX"):
        words.skip_if_exists()
        name = words.name()
        if words.accept("RENAME", "TO"):
            yield op.RenameIndex(name, words.name())
        else:
            raise _NotUnderstood("zdm does not know this ALTER INDEX form")
    elif words.accept("ALTER", "POLICY"):
        words.name()
        words.accept("ON")
        yield op.RowLevelSecurity(words.name(), action="alter policy")
    elif words.accept("ALTER", "MATERIALIZED", "VIEW") or words.accept("ALTER", "VIEW"):
        yield op.CatalogOnly("view")
    elif words.accept("ALTER", "TRIGGER"):
        words.name()
        words.accept("ON")
        yield op.Trigger(on=words.name(), action="rename")
    elif words.accept("COMMENT", "ON") or head in ("GRANT", "REVOKE"):
        yield op.CatalogOnly("comment or privileges")
    elif head in ("BEGIN", "START"):
        yield op.TransactionControl("begin")
    elif head in ("COMMIT", "END"):
        yield op.TransactionControl("commit")
    elif head == "ROLLBACK":
        yield op.TransactionControl("rollback")
    else:
        raise _NotUnderstood(f"zdm does not recognise a statement starting with {head or 'this'}")


def _name_list(words: _Words) -> tuple[str, ...]:
    names: list[str] = []
    while not words.done():
        if words.word() in (",", "(", ")"):
            words.pos += 1
            continue
        if words.word() in ("VERBOSE", "FULL", "FREEZE", "ANALYZE", "SKIP_LOCKED"):
            words.pos += 1
            continue
        names.append(words.name())
        if words.word() == "(":  # a column list: skip it
            while not words.done() and words.word() != ")":
                words.pos += 1
    return tuple(names)


def _vacuum_words(words: _Words) -> op.Operation:
    full = False
    if words.word() == "(":
        options = []
        while not words.done() and words.word() != ")":
            options.append(words.word())
            words.pos += 1
        words.accept(")")
        full = "FULL" in options
    while words.word() in ("FULL", "FREEZE", "VERBOSE", "ANALYZE"):
        full = full or words.word() == "FULL"
        words.pos += 1
    return op.Maintenance("vacuum_full" if full else "vacuum", _name_list(words))


def _reindex_words(words: _Words) -> op.Operation:
    if words.word() == "(":
        while not words.done() and words.word() != ")":
            words.pos += 1
        words.accept(")")
    words.accept("INDEX") or words.accept("TABLE") or words.accept("SCHEMA") or words.accept("DATABASE")
    concurrently = words.accept("CONCURRENTLY")
    return op.Reindex(words.name(), concurrently=concurrently)


def _alter_type(words: _Words) -> op.Operation:
    name = words.name()
    if words.accept("ADD", "VALUE"):
        words.skip_if_exists()
        value = words.string()
        if words.accept("BEFORE"):
            return op.AddEnumValue(name, value, before=words.string())
        if words.accept("AFTER"):
            return op.AddEnumValue(name, value, after=words.string())
        return op.AddEnumValue(name, value)
    if words.accept("RENAME", "VALUE"):
        old = words.string()
        words.accept("TO")
        return op.RenameEnumValue(name, old, words.string())
    if words.accept("RENAME", "TO"):
        return op.RenameType(name, words.name())
    if words.accept("OWNER", "TO") or words.accept("SET", "SCHEMA"):
        return op.CatalogOnly("type owner or schema")
    raise _NotUnderstood("zdm does not know this ALTER TYPE form")


def _split_top_level(tokens: Sequence[Token]) -> list[list[Token]]:
    parts: list[list[Token]] = [[]]
    depth = 0
    for token in tokens:
        if token.token_type is TokenType.L_PAREN:
            depth += 1
        elif token.token_type is TokenType.R_PAREN:
            depth -= 1
        if token.token_type is TokenType.COMMA and depth == 0:
            parts.append([])
        else:
            parts[-1].append(token)
    return [p for p in parts if p]


def _alter_table_words(words: _Words) -> Iterator[op.Operation]:
    words.skip_if_exists()
    words.accept("ONLY")
    table = words.name()
    words.accept("*")
    for part in _split_top_level(words.tokens[words.pos :]):
        yield from _alter_table_subcommand(table, part, words.source)


def _alter_table_subcommand(table: str, part: list[Token], source: str) -> Iterator[op.Operation]:
    sub_text = source[part[0].start : part[-1].end + 1]
    tree = _reparse_alter(table, sub_text)
    if tree is not None:
        try:
            yield from _alter(tree)
            return
        except _NotUnderstood:
            pass
    words = _Words(part, source)
    if words.accept("RENAME", "CONSTRAINT"):
        old = words.name()
        words.accept("TO")
        yield op.RenameConstraint(table, old, words.name())
    elif words.accept("VALIDATE", "CONSTRAINT"):
        yield op.ValidateConstraint(table, words.name())
    elif words.accept("ADD", "CONSTRAINT"):
        name = words.name()
        kind = "primary_key" if words.accept("PRIMARY", "KEY") else "unique" if words.accept("UNIQUE") else ""
        if kind and words.accept("USING", "INDEX"):
            index = words.name()
            yield op.AddConstraint(table, op.ConstraintSpec(name, kind, using_index=index))
        else:
            raise _NotUnderstood(f"zdm does not know this ADD CONSTRAINT form: {sub_text[:80]}")
    elif words.word() in ("ENABLE", "DISABLE", "FORCE", "NO"):
        yield _enable_disable(table, words, sub_text)
    elif words.accept("OWNER", "TO"):
        yield op.TableOption(table, option="owner", lock="ACCESS_EXCLUSIVE")
    elif words.accept("REPLICA", "IDENTITY"):
        yield op.TableOption(table, option="replica identity", lock="ACCESS_EXCLUSIVE")
    elif words.accept("CLUSTER", "ON") or words.accept("SET", "WITHOUT", "CLUSTER"):
        yield op.TableOption(table, option="cluster marker", lock="SHARE_UPDATE_EXCLUSIVE")
    elif words.accept("SET", "(") or words.accept("RESET", "("):
        yield op.TableOption(table, option="storage parameters", lock="SHARE_UPDATE_EXCLUSIVE")
    elif words.accept("SET", "SCHEMA"):
        yield op.TableOption(table, option="set schema", lock="ACCESS_EXCLUSIVE")
    elif words.accept("ALTER", "COLUMN") or words.accept("ALTER"):
        yield _alter_column_words(table, words, sub_text)
    else:
        raise _NotUnderstood(f"zdm does not know the ALTER TABLE subcommand: {sub_text[:80]}")


def _reparse_alter(table: str, sub_text: str) -> exp.Alter | None:
    try:
        tree = _DIALECT.parse(f'ALTER TABLE "{table}" {sub_text}')
    except (SqlglotError, ValueError, IndexError, TypeError, AttributeError):
        return None
    if len(tree) == 1 and isinstance(tree[0], exp.Alter) and tree[0].args.get("actions"):
        fixed = tree[0]
        fixed.set("this", exp.Table(this=exp.Identifier(this=table, quoted=True)))
        return fixed
    return None


def _enable_disable(table: str, words: _Words, sub_text: str) -> op.Operation:
    text = " ".join(t.text.upper() for t in words.tokens)
    if "ROW LEVEL SECURITY" in text:
        return op.RowLevelSecurity(table, action=text.replace(" ROW LEVEL SECURITY", "").lower())
    if "TRIGGER" in text:
        return op.Trigger(table, action="enable" if text.startswith("ENABLE") else "disable")
    if "RULE" in text:
        return op.TableOption(table, option="rule", lock="SHARE_ROW_EXCLUSIVE")
    raise _NotUnderstood(f"zdm does not know the ALTER TABLE subcommand: {sub_text[:80]}")


def _alter_column_words(table: str, words: _Words, sub_text: str) -> op.Operation:
    column = words.name()
    if words.accept("SET", "STATISTICS") or words.accept("SET", "(") or words.accept("RESET", "("):
        return op.AlterColumnOption(table, column=column, option="statistics or attribute options")
    if words.accept("SET", "STORAGE") or words.accept("SET", "COMPRESSION"):
        return op.AlterColumnOption(table, column=column, option="storage")
    if words.accept("ADD", "GENERATED"):
        return op.AlterColumnIdentity(table, column=column, action="add identity")
    if words.accept("DROP", "IDENTITY"):
        return op.AlterColumnIdentity(table, column=column, action="drop identity")
    if words.accept("DROP", "EXPRESSION"):
        return op.AlterColumnIdentity(table, column=column, action="drop expression")
    if words.word() in ("SET", "RESTART"):
        return op.AlterColumnIdentity(table, column=column, action="identity options")
    raise _NotUnderstood(f"zdm does not know the ALTER COLUMN form: {sub_text[:80]}")


def _create_words(words: _Words) -> Iterator[op.Operation]:
    words.accept("CREATE")
    words.accept("OR", "REPLACE")
    temporary = bool(words.accept("TEMPORARY") or words.accept("TEMP"))
    words.accept("UNLOGGED")
    if words.accept("TABLE"):
        words.skip_if_exists()
        name = words.name()
        yield op.CreateTable(name, reads=_reads_after_as(words), temporary=temporary)
        return
    if (
        words.word() in ("FUNCTION", "PROCEDURE", "AGGREGATE", "OPERATOR", "CAST", "COLLATION", "LANGUAGE")
        or words.word() in ("EXTENSION", "SCHEMA", "SEQUENCE", "ROLE", "USER", "PUBLICATION", "SUBSCRIPTION")
        or words.word() in ("TYPE", "DOMAIN")
    ):
        yield op.CatalogOnly(words.word().lower())
    elif words.accept("POLICY"):
        words.name()
        words.accept("ON")
        yield op.RowLevelSecurity(words.name(), action="create policy")
    elif words.accept("CONSTRAINT", "TRIGGER") or words.accept("TRIGGER"):
        words.name()
        while not words.done() and words.word() != "ON":
            words.pos += 1
        words.accept("ON")
        yield op.Trigger(on=words.name(), action="create")
    elif words.word() in ("UNIQUE", "INDEX"):
        unique = words.accept("UNIQUE")
        words.accept("INDEX")
        concurrently = words.accept("CONCURRENTLY")
        if_not_exists = words.accept("IF", "NOT", "EXISTS")
        index_name: str | None = None if words.word() == "ON" else words.name()
        words.accept("ON")
        words.accept("ONLY")
        yield op.CreateIndex(
            index_name, words.name(), unique=unique, concurrently=concurrently, if_not_exists=if_not_exists
        )
    elif words.word() in ("MATERIALIZED", "VIEW"):
        materialized = words.accept("MATERIALIZED")
        words.accept("VIEW")
        words.skip_if_exists()
        yield op.CreateView(words.name(), materialized=materialized, reads=())
    else:
        raise _NotUnderstood(f"zdm does not know CREATE {words.word()}")


def _reads_after_as(words: _Words) -> tuple[str, ...]:
    """Tables read by the query of `CREATE TABLE ... AS <query>`, when sqlglot can parse the query."""
    depth = 0
    while not words.done():
        word = words.word()
        depth += word == "("
        depth -= word == ")"
        words.pos += 1
        if word == "AS" and depth == 0:
            try:
                trees = _DIALECT.parse(words.rest_text())
                return _reads(trees[0]) if len(trees) == 1 and isinstance(trees[0], exp.Expression) else ()
            except (SqlglotError, ValueError, IndexError, TypeError, AttributeError):
                return ()
    return ()


_LOCK_MODES = {
    "ACCESS SHARE": "ACCESS_SHARE",
    "ROW SHARE": "ROW_SHARE",
    "ROW EXCLUSIVE": "ROW_EXCLUSIVE",
    "SHARE UPDATE EXCLUSIVE": "SHARE_UPDATE_EXCLUSIVE",
    "SHARE": "SHARE",
    "SHARE ROW EXCLUSIVE": "SHARE_ROW_EXCLUSIVE",
    "EXCLUSIVE": "EXCLUSIVE",
    "ACCESS EXCLUSIVE": "ACCESS_EXCLUSIVE",
}


def _lock_table(words: _Words) -> op.Operation:
    words.accept("TABLE")
    words.accept("ONLY")
    names = []
    while not words.done() and words.word() not in ("IN", "NOWAIT"):
        if words.word() == ",":
            words.pos += 1
            continue
        names.append(words.name())
    mode_words = []
    if words.accept("IN"):
        while not words.done() and words.word() != "MODE":
            mode_words.append(words.word())
            words.pos += 1
    mode = _LOCK_MODES.get(" ".join(mode_words), "ACCESS_EXCLUSIVE")
    return op.LockTable(tuple(names), mode)


def _data_change_words(words: _Words, head: str) -> op.Operation:
    """INSERT/UPDATE/DELETE sqlglot cannot parse: the target is enough to judge it; reads stay unknown."""
    words.pos += 1
    words.accept("INTO") or words.accept("FROM")
    words.accept("ONLY")
    target = words.name()
    return op.DataChange(head.lower(), target, has_where=True)


# Statements that may appear inside a DO block's procedural code, and the words after which one can start.
_STATEMENT_STARTS = {
    "CREATE", "ALTER", "DROP", "INSERT", "UPDATE", "DELETE", "TRUNCATE", "COMMENT", "GRANT", "REVOKE",
    "REFRESH", "VACUUM", "CLUSTER", "REINDEX", "LOCK", "MERGE",
}  # fmt: skip
_CONTROL_WORDS = {"THEN", "ELSE", "LOOP", "BEGIN"}


def _do_statement(words: _Words) -> ParsedStatement:
    try:
        block = _do_block(words)
    except _NotUnderstood as problem:
        return ParsedStatement("do (recognised)", (op.Unrecognized(str(problem)),))
    operations = tuple(o for statement in block.statements for o in statement.operations)
    # A block of procedural checks only (IF ... RAISE) runs no SQL statement of its own.
    operations = operations or (op.CatalogOnly("procedural checks"),)
    return ParsedStatement("do (recognised)", operations, block=block)


def _do_block(words: _Words) -> DoBlock:
    """Read the SQL inside `DO $$ ... $$`: plain statements after BEGIN/THEN/ELSE/LOOP are judged like any
    other; dynamic SQL (EXECUTE) or a statement nested in an expression cannot be, and is reported."""
    words.accept("LANGUAGE") and words.name()
    body_token = words.peek()
    if body_token is None or body_token.token_type not in _QUOTED:
        raise _NotUnderstood("a DO block without a body zdm can read")
    body = str(body_token.text)
    if body.startswith("$"):
        body = body[body.index("$", 1) + 1 : body.rindex("$", 0, body.rindex("$"))]
    try:
        tokens = _PlainTokenizer().tokenize(body)
    except (SqlglotError, ValueError, IndexError):
        raise _NotUnderstood("the DO block's body could not be tokenized") from None
    pieces = _split_on_semicolons(tokens)
    uppers = [[t.text.upper() if t.token_type not in _QUOTED else "" for t in piece] for piece in pieces]
    starts = [_statement_start(piece, upper) for piece, upper in zip(pieces, uppers, strict=True)]
    loop_of, committing = _loops(uppers, starts)
    guards, procedural = _guarded_statements(pieces, uppers, starts, body)
    statements: list[BlockStatement] = []
    for piece, upper, start, loop, guarded_by in zip(pieces, uppers, starts, loop_of, guards, strict=True):
        if "EXECUTE" in upper:
            raise _NotUnderstood("the DO block runs dynamic SQL (EXECUTE); review it by hand")
        if start is None:
            if any(word in _STATEMENT_STARTS for word in upper):
                raise _NotUnderstood(
                    "the DO block nests a statement inside procedural code; review it by hand"
                )
            continue
        offset = piece[start].start
        text = body[offset : piece[-1].end + 1]
        from bot.analysis.splitter import split_statements

        for raw in split_statements(text):
            parsed = parse_statement(raw, text)
            operations: list[op.Operation] = []
            for operation in parsed.operations:
                if isinstance(operation, op.Unrecognized):
                    raise _NotUnderstood(f"inside the DO block: {operation.reason}")
                if isinstance(operation, op.DataChange) and loop in committing:
                    operation = replace(operation, batched=True)
                operations.append(operation)
            if not operations:
                procedural = procedural or f"a statement zdm reads nothing of ({_snippet(raw.text)})"
                continue
            statements.append(
                BlockStatement(
                    offset + raw.start,
                    offset + raw.end,
                    tuple(operations),
                    parsed.parts or ("",) * len(operations),
                    guarded_by,
                )
            )
    head, tail = _around_body(words.source, body_token, body)
    if head is None or tail is None:
        return DoBlock("", body, "", tuple(statements), "a body not written between dollar quotes")
    return DoBlock(head, body, tail, tuple(statements), procedural)


def _snippet(sql: str) -> str:
    text = " ".join(sql.split())
    return text if len(text) <= 60 else text[:57] + "..."


def _around_body(source: str, token: Token, body: str) -> tuple[str | None, str | None]:
    """The block's text before and after its body, when the body stands in the text as written (between
    dollar quotes: a quoted string's body has its quotes doubled)."""
    opening = source[token.start : token.end + 1]
    if not opening.startswith("$") or "$" not in opening[1:]:
        return None, None
    begin = token.start + opening.index("$", 1) + 1
    if source[begin : begin + len(body)] != body:
        return None, None
    return source[:begin], source[begin + len(body) :]


# The catalog queries a guard may ask, each with the column naming the constraint and the one naming its
# table (information_schema names a table by its bare name).
_GUARD_CATALOGS = {
    "pg_constraint": ("conname", None),
    "pg_catalog.pg_constraint": ("conname", None),
    "information_schema.table_constraints": ("constraint_name", "table_name"),
}
# Columns a guard may also compare, and the only value that leaves its question unchanged for zdm's replay,
# which knows the default schema's tables by bare name.
_GUARD_SCHEMA_COLUMNS = ("table_schema", "constraint_schema")


def _guarded_statements(
    pieces: Sequence[list[Token]], uppers: Sequence[list[str]], starts: Sequence[int | None], body: str
) -> tuple[list[tuple[ConstraintGuard, ...]], str | None]:
    """The guards the statement of each piece of a DO block runs under, when the body is `BEGIN`, statements,
    `IF <guard> THEN ... END IF` around them and `END` only; else also why it is more (None: it is not).
    PL/pgSQL's `NULL;` does nothing and may stand anywhere a statement can."""
    guards: list[tuple[ConstraintGuard, ...]] = [() for _ in pieces]
    open_guards: list[ConstraintGuard] = []
    begun = ended = False
    for number, (piece, upper, start) in enumerate(zip(pieces, uppers, starts, strict=True)):
        control = upper if start is None else upper[:start]
        at = 0
        if ended:
            return guards, "code after its END"
        if not begun:
            if control[:1] == ["DECLARE"]:
                return guards, "variables (DECLARE)"
            if control[:1] != ["BEGIN"]:
                return guards, "code before its BEGIN"
            begun, at = True, 1
        while at < len(control):
            rest = control[at:]
            if rest[0] == "IF":
                then = _then_of(upper, at + 1, len(control))
                guard = None if then is None else _guard(piece[at + 1 : then], body)
                if then is None or guard is None:
                    return guards, "a condition other than IF [NOT] EXISTS over a constraint in the catalog"
                open_guards.append(guard)
                at = then + 1
            elif start is None and rest == ["END", "IF"] and open_guards:
                open_guards.pop()
                at += 2
            elif start is None and rest == ["END"] and not open_guards:
                ended, at = True, at + 1
            elif start is None and rest == ["NULL"]:
                at += 1
            else:
                return guards, f"procedural code ({' '.join(word for word in rest[:2] if word)})"
        if start is not None:
            guards[number] = tuple(open_guards)
    return guards, None if ended else "a body whose END zdm could not find"


def _then_of(upper: Sequence[str], begin: int, end: int) -> int | None:
    depth = 0
    for index in range(begin, end):
        word = upper[index]
        depth += (word == "(") - (word == ")")
        if word == "THEN" and depth == 0:
            return index
    return None


def _guard(condition: Sequence[Token], body: str) -> ConstraintGuard | None:
    """`[NOT] EXISTS (SELECT ... FROM <catalog> WHERE <column> = '<value>' [AND ...])` over a constraint's
    name (and its table's); None for any other condition."""
    try:
        return _constraint_guard(_Words(condition, body))
    except _NotUnderstood:
        return None  # the condition ends early


def _constraint_guard(words: _Words) -> ConstraintGuard | None:
    runs_if_exists = not words.accept("NOT")
    if not words.accept("EXISTS", "(", "SELECT"):
        return None
    while not words.done() and words.word() not in ("FROM", "(", ")"):
        words.pos += 1
    if not words.accept("FROM"):
        return None
    catalog = [words.string().lower()]
    while words.accept("."):
        catalog.append(words.string().lower())
    columns = _GUARD_CATALOGS.get(".".join(catalog))
    if columns is None or not words.accept("WHERE"):
        return None
    compared: dict[str, str] = {}
    while True:
        column = words.word().lower()
        if not column or not words.accept(column.upper(), "="):
            return None
        value = words.peek()
        if value is None or value.token_type is not TokenType.STRING or column in compared:
            return None
        compared[column] = str(value.text)
        words.pos += 1
        if not words.accept("AND"):
            break
    if not words.accept(")") or not words.done():
        return None
    name_column, table_column = columns
    name = compared.pop(name_column, None)
    table = compared.pop(table_column, None) if table_column else None
    for column in _GUARD_SCHEMA_COLUMNS:
        if compared.get(column) == DEFAULT_SCHEMA:
            compared.pop(column)
    if name is None or compared:
        return None
    return ConstraintGuard(name, table, runs_if_exists)


def _loops(uppers: Sequence[list[str]], starts: Sequence[int | None]) -> tuple[list[int | None], set[int]]:
    """For each piece of a DO block, the innermost loop its statement runs in (None: none), and the loops that
    COMMIT somewhere inside: a data change in such a loop works in batches, each its own transaction."""
    open_loops: list[int] = []
    count = 0
    loop_of: list[int | None] = []
    committing: set[int] = set()
    for upper, start in zip(uppers, starts, strict=True):
        # Words inside the statement itself are SQL, not PL/pgSQL control.
        control = upper if start is None else upper[:start]
        for index, word in enumerate(control):
            previous = control[index - 1] if index else ""
            if word == "COMMIT" and (not previous or previous in _CONTROL_WORDS):
                committing.update(open_loops)
            elif word == "LOOP" and previous == "END":
                if open_loops:
                    open_loops.pop()
            elif word == "LOOP":
                open_loops.append(count)
                count += 1
        loop_of.append(open_loops[-1] if open_loops else None)
    return loop_of, committing


def _split_on_semicolons(tokens: Sequence[Token]) -> list[list[Token]]:
    pieces: list[list[Token]] = [[]]
    for token in tokens:
        if token.token_type is TokenType.SEMICOLON:
            pieces.append([])
        else:
            pieces[-1].append(token)
    return [p for p in pieces if p]


def _statement_start(piece: list[Token], upper: list[str]) -> int | None:
    depth = 0
    for index, word in enumerate(upper):
        if word == "(":
            depth += 1
        elif word == ")":
            depth -= 1
        elif depth == 0 and word in _STATEMENT_STARTS and (index == 0 or upper[index - 1] in _CONTROL_WORDS):
            return index
    return None


def _ends_with_cascade(words: _Words) -> bool:
    last = words.tokens[-1] if words.tokens else None
    return last is not None and last.token_type not in _QUOTED and last.text.upper() == "CASCADE"


def _drop_words(words: _Words) -> Iterator[op.Operation]:
    words.accept("DROP")
    if words.accept("POLICY"):
        words.skip_if_exists()
        words.name()
        words.accept("ON")
        yield op.RowLevelSecurity(words.name(), action="drop policy")
    elif words.accept("TRIGGER"):
        words.skip_if_exists()
        name = words.name()
        words.accept("ON")
        yield op.Trigger(on=words.name(), action="drop", name=name)
    elif words.accept("INDEX"):
        concurrently = words.accept("CONCURRENTLY")
        words.skip_if_exists()
        cascade = _ends_with_cascade(words)
        for part in _split_top_level(words.tokens[words.pos :]):
            sub = _Words(part, words.source)
            name = sub.name()
            yield op.DropIndex(name, concurrently=concurrently, cascade=cascade)
    elif words.word() in (
        "FUNCTION",
        "PROCEDURE",
        "EXTENSION",
        "SCHEMA",
        "SEQUENCE",
        "AGGREGATE",
        "OPERATOR",
    ):
        yield op.CatalogOnly(f"drop {words.word().lower()}")
    elif words.accept("TYPE"):
        words.skip_if_exists()
        cascade = _ends_with_cascade(words)
        yield op.DropType(words.name(), cascade=cascade)
    else:
        raise _NotUnderstood(f"zdm does not know DROP {words.word()}")
