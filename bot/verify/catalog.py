"""A database's schema as sorted lines of text, read from the catalog in one query.

What `pg_dump --schema-only --no-owner --no-privileges` would show, without starting a process per database:
schemas, extensions, tables (kind, persistence, partitioning, options, row security), columns in order with
type, nullability, default, identity, generation and collation, constraints (with NOT VALID), indexes (with
validity), types (enums with their labels in order, domains, composites), sequences and their owners, views,
functions, triggers, rules, policies, inheritance and comments. Object identifiers never appear, so two
databases built the same way give the same lines. `tests/test_catalog.py` checks that each kind of object
changes them, and the corpus proof compares them with `pg_dump` on a sample.
"""

from __future__ import annotations

import re

import psycopg

_USER_NAMESPACES = """
    SELECT oid, nspname FROM pg_namespace
    WHERE nspname NOT IN ('pg_catalog', 'information_schema') AND nspname NOT LIKE 'pg_toast%'
      AND nspname NOT LIKE 'pg_temp%'
"""
# Objects an extension owns come and go with the extension: listed by the extension alone.
_NOT_FROM_EXTENSION = "NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = {catalog}::regclass AND d.objid = {oid} AND d.deptype = 'e')"

# `{column_position}` is filled in below: a column's position, or nothing (see `schema_lines`).
SCHEMA_LINES = f"""
WITH ns AS ({_USER_NAMESPACES}),
rel AS (
    SELECT c.oid, c.relkind, quote_ident(ns.nspname) || '.' || quote_ident(c.relname) AS name
    FROM pg_class c JOIN ns ON ns.oid = c.relnamespace
    WHERE {_NOT_FROM_EXTENSION.format(catalog="'pg_class'", oid="c.oid")}
)
SELECT line FROM (
    SELECT 'schema ' || quote_ident(nspname) AS line FROM ns
    UNION ALL
    SELECT 'extension ' || extname FROM pg_extension WHERE extname <> 'plpgsql'
    UNION ALL
    SELECT 'relation ' || rel.name || ' kind=' || c.relkind::text || ' persistence=' || c.relpersistence::text
        || ' rls=' || c.relrowsecurity::text || '/' || c.relforcerowsecurity::text
        || ' options=' || coalesce(array_to_string(c.reloptions, ','), '')
        || ' partition_key=' || coalesce(pg_get_partkeydef(c.oid), '')
        || ' bound=' || coalesce(pg_get_expr(c.relpartbound, c.oid), '')
        || ' replica_identity=' || c.relreplident::text
    FROM rel JOIN pg_class c ON c.oid = rel.oid
    WHERE c.relkind IN ('r', 'p', 'v', 'm', 'f', 'S')
    UNION ALL
    SELECT 'column ' || rel.name || {{column_position}} || ' ' || quote_ident(a.attname) || ' ' || format_type(a.atttypid, a.atttypmod)
        || CASE WHEN a.attnotnull THEN ' NOT NULL' ELSE '' END
        || coalesce(' DEFAULT ' || pg_get_expr(ad.adbin, ad.adrelid), '')
        || CASE WHEN a.attidentity::text <> '' THEN ' IDENTITY ' || a.attidentity::text ELSE '' END
        || CASE WHEN a.attgenerated::text <> '' THEN ' GENERATED ' || a.attgenerated::text ELSE '' END
        || coalesce(' COLLATE ' || (SELECT quote_ident(collname) FROM pg_collation co
                                   WHERE co.oid = a.attcollation AND a.attcollation <> t.typcollation), '')
        || ' storage=' || a.attstorage::text
    FROM rel JOIN pg_attribute a ON a.attrelid = rel.oid
    JOIN pg_type t ON t.oid = a.atttypid
    LEFT JOIN pg_attrdef ad ON ad.adrelid = a.attrelid AND ad.adnum = a.attnum
    WHERE rel.relkind IN ('r', 'p', 'v', 'm', 'f', 'c') AND a.attnum > 0 AND NOT a.attisdropped
    UNION ALL
    SELECT 'constraint ' || coalesce(rel.name, format_type(con.contypid, NULL)) || ' '
        || quote_ident(con.conname) || ' ' || pg_get_constraintdef(con.oid)
        || CASE WHEN con.condeferrable THEN ' deferrable' ELSE '' END
        || CASE WHEN con.condeferred THEN ' deferred' ELSE '' END
    FROM pg_constraint con
    LEFT JOIN rel ON rel.oid = con.conrelid
    JOIN ns ON ns.oid = con.connamespace
    -- PostgreSQL 18 records NOT NULL as constraints too; the column lines carry nullability.
    WHERE con.contype <> 'n'
    UNION ALL
    SELECT 'index ' || pg_get_indexdef(i.indexrelid) || CASE WHEN i.indisvalid THEN '' ELSE ' INVALID' END
        || CASE WHEN i.indisclustered THEN ' CLUSTERED' ELSE '' END
        || CASE WHEN i.indisreplident THEN ' REPLICA IDENTITY' ELSE '' END
    FROM pg_index i JOIN rel ON rel.oid = i.indrelid
    UNION ALL
    SELECT 'enum ' || format_type(t.oid, NULL) || ' ('
        || (SELECT string_agg(quote_literal(e.enumlabel), ', ' ORDER BY e.enumsortorder)
            FROM pg_enum e WHERE e.enumtypid = t.oid) || ')'
    FROM pg_type t JOIN ns ON ns.oid = t.typnamespace WHERE t.typtype = 'e'
        AND {_NOT_FROM_EXTENSION.format(catalog="'pg_type'", oid="t.oid")}
    UNION ALL
    SELECT 'domain ' || format_type(t.oid, NULL) || ' ' || format_type(t.typbasetype, t.typtypmod)
        || CASE WHEN t.typnotnull THEN ' NOT NULL' ELSE '' END || coalesce(' DEFAULT ' || t.typdefault, '')
    FROM pg_type t JOIN ns ON ns.oid = t.typnamespace WHERE t.typtype = 'd'
    UNION ALL
    SELECT 'composite ' || format_type(t.oid, NULL)
    FROM pg_type t JOIN ns ON ns.oid = t.typnamespace JOIN pg_class c ON c.oid = t.typrelid
    WHERE t.typtype = 'c' AND c.relkind = 'c'
    UNION ALL
    SELECT 'sequence ' || rel.name || ' ' || format_type(s.seqtypid, NULL) || ' start=' || s.seqstart
        || ' increment=' || s.seqincrement || ' min=' || s.seqmin || ' max=' || s.seqmax
        || ' cache=' || s.seqcache || ' cycle=' || s.seqcycle::text
        || coalesce(' owned_by=' || (SELECT quote_ident(oc.relname) || '.' || quote_ident(oa.attname)
            FROM pg_depend d JOIN pg_class oc ON oc.oid = d.refobjid
            JOIN pg_attribute oa ON oa.attrelid = d.refobjid AND oa.attnum = d.refobjsubid
            WHERE d.classid = 'pg_class'::regclass AND d.objid = s.seqrelid AND d.deptype IN ('a', 'i')
            LIMIT 1), '')
    FROM pg_sequence s JOIN rel ON rel.oid = s.seqrelid
    UNION ALL
    SELECT 'view ' || rel.name || ' ' || pg_get_viewdef(rel.oid)
    FROM rel WHERE rel.relkind IN ('v', 'm')
    UNION ALL
    SELECT 'function ' || pg_get_functiondef(p.oid)
    FROM pg_proc p JOIN ns ON ns.oid = p.pronamespace
    WHERE p.prokind IN ('f', 'p') AND {_NOT_FROM_EXTENSION.format(catalog="'pg_proc'", oid="p.oid")}
    UNION ALL
    SELECT 'trigger ' || pg_get_triggerdef(tg.oid) || ' enabled=' || tg.tgenabled::text
    FROM pg_trigger tg JOIN rel ON rel.oid = tg.tgrelid WHERE NOT tg.tgisinternal
    UNION ALL
    SELECT 'rule ' || pg_get_ruledef(r.oid)
    FROM pg_rewrite r JOIN rel ON rel.oid = r.ev_class WHERE r.rulename <> '_RETURN'
    UNION ALL
    SELECT 'policy ' || rel.name || ' ' || quote_ident(pol.polname) || ' ' || pol.polcmd::text || ' '
        || pol.polpermissive::text || ' ' || coalesce(pg_get_expr(pol.polqual, pol.polrelid), '') || ' '
        || coalesce(pg_get_expr(pol.polwithcheck, pol.polrelid), '')
    FROM pg_policy pol JOIN rel ON rel.oid = pol.polrelid
    UNION ALL
    SELECT 'inherits ' || rel.name || ' ' || inh.inhparent::regclass::text || ' #' || inh.inhseqno
    FROM pg_inherits inh JOIN rel ON rel.oid = inh.inhrelid
    UNION ALL
    SELECT 'comment ' || pg_describe_object(d.classoid, d.objoid, d.objsubid) || ' ' || d.description
    FROM pg_description d
    WHERE d.classoid IN ('pg_class'::regclass, 'pg_type'::regclass, 'pg_constraint'::regclass,
                         'pg_proc'::regclass, 'pg_namespace'::regclass, 'pg_trigger'::regclass)
      AND (d.classoid <> 'pg_namespace'::regclass OR d.objoid IN (SELECT oid FROM ns))
      AND (d.classoid <> 'pg_class'::regclass OR d.objoid IN (SELECT oid FROM rel))
      AND (d.classoid <> 'pg_proc'::regclass
           OR d.objoid IN (SELECT p.oid FROM pg_proc p JOIN ns ON ns.oid = p.pronamespace))
      AND (d.classoid <> 'pg_type'::regclass
           OR d.objoid IN (SELECT t.oid FROM pg_type t JOIN ns ON ns.oid = t.typnamespace))
) AS everything
ORDER BY line
"""


_POSITION = "' #' || row_number() OVER (PARTITION BY a.attrelid ORDER BY a.attnum)"
_SCHEMA_LINES_IN_ORDER = SCHEMA_LINES.replace("{column_position}", _POSITION)
_SCHEMA_LINES_ANY_ORDER = SCHEMA_LINES.replace("{column_position}", "''")


def schema_lines(conn: psycopg.Connection[tuple[object, ...]], *, column_order: bool = False) -> list[str]:
    """The schema's lines. Columns are compared by name, not position, unless `column_order`: an online
    column change (`zdm fix` on a type change that rewrites) ends with the changed column last, since
    PostgreSQL cannot place a new column, and no application that names its columns (Prisma does) sees it."""
    query = _SCHEMA_LINES_IN_ORDER if column_order else _SCHEMA_LINES_ANY_ORDER
    lines = [str(row[0]) for row in conn.execute(query).fetchall()]
    return lines if column_order else sorted(_any_order_view(line) for line in lines)


# A sub-select whose first item shares its line with the SELECT (`CROSS JOIN LATERAL ( SELECT t_1.id,`).
_SUB_SELECT = re.compile(r"^(.*?[\s(]SELECT) (.+)$")


def _any_order_view(line: str) -> str:
    """A view's definition with its lines in any order: a view created after an online column change with
    `SELECT t.*`, or `SELECT *` in a sub-select, lists the table's columns in their new order (PostgreSQL
    expands `*` when the view is created). pg_get_viewdef puts each item of a select list on a line of its
    own but the first, which shares the SELECT's line: it is split off."""
    if not line.startswith("view "):
        return line
    head, _, definition = line.partition("\n")
    first, _, rest = head.partition(" SELECT ")
    if not rest:
        return line
    items: list[str] = []
    for text in [rest, *definition.split("\n")]:
        item = text.strip().rstrip(",")
        sub_select = _SUB_SELECT.match(item)
        items += [sub_select[1], sub_select[2]] if sub_select else [item]
    return first + " SELECT " + "\n".join(sorted(items))


def schema_difference(left: list[str], right: list[str], most: int = 6) -> str:
    """The lines only one side has, for a failure message."""
    only_left = sorted(set(left) - set(right))
    only_right = sorted(set(right) - set(left))
    lines = [f"- {line[:300]}" for line in only_left[:most]] + [
        f"+ {line[:300]}" for line in only_right[:most]
    ]
    return "\n".join(lines)
