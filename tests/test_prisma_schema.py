"""The Prisma schema parser: blocks, fields, attributes and their arguments, comments, and strict errors."""

from __future__ import annotations

import contextlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.analysis.prisma_schema import (
    Argument,
    Call,
    ListValue,
    Literal,
    PrismaSchemaError,
    Value,
    parse_schema,
)

SCHEMA = """\
// A comment
generator client {
  provider        = "prisma-client-js"
  previewFeatures = ["multiSchema", "views"]
}

datasource db {
  provider  = "postgresql"
  url       = env("DATABASE_URL")
  directUrl = env("DIRECT_URL")
  schemas   = ["public", "auth"]
}

/// The users.
model User {
  id        Int      @id @default(autoincrement()) // trailing comment
  email     String?  @unique @db.VarChar(320)
  tags      String[]
  role      Role     @default(USER) @map("user_role")
  posts     Post[]   @relation("Authored")
  location  Unsupported("geometry(Point, 4326)")?
  createdAt DateTime @default(now()) @db.Timestamptz(6)

  @@index([email(sort: Desc), createdAt], map: "users_email_idx")
  @@map("users")
  @@schema("auth")
}

model Post {
  id       String @id @default(dbgenerated("gen_random_uuid()")) @db.Uuid
  authorId Int
  author   User   @relation("Authored", fields: [authorId],
                            references: [id], onDelete: Cascade)

  @@unique([authorId, id])
  @@schema("public")
}

/* A block comment
   over two lines */
enum Role {
  USER
  ADMIN @map("admin") /// documented

  @@schema("auth")
}

view UserNames {
  id   Int    @unique
  name String
  @@schema("public")
}

type Address {
  street String
}
"""


def test_blocks_are_read_with_their_kind_name_and_line() -> None:
    schema = parse_schema({"prisma/schema.prisma": SCHEMA})
    assert [(b.kind, b.name, b.line) for b in schema.blocks] == [
        ("generator", "client", 2),
        ("datasource", "db", 7),
        ("model", "User", 15),
        ("model", "Post", 29),
        ("enum", "Role", 41),
        ("view", "UserNames", 48),
        ("type", "Address", 54),
    ]
    assert all(b.path == "prisma/schema.prisma" for b in schema.blocks)


def test_datasource_properties_keep_strings_calls_and_lists() -> None:
    datasource = parse_schema({"s.prisma": SCHEMA}).of_kind("datasource")[0]
    assert datasource.property("provider") == Literal("postgresql", is_string=True)
    assert datasource.property("url") == Call("env", (_arg(Literal("DATABASE_URL", is_string=True)),))
    assert datasource.property("schemas") == ListValue(
        (Literal("public", is_string=True), Literal("auth", is_string=True))
    )


def test_fields_keep_type_optionality_lists_and_attributes() -> None:
    user = parse_schema({"s.prisma": SCHEMA}).of_kind("model")[0]
    fields = {f.name: f for f in user.fields}
    assert (fields["email"].type, fields["email"].optional, fields["email"].list) == ("String", True, False)
    assert (fields["tags"].type, fields["tags"].list) == ("String", True)
    assert fields["email"].line == 17
    varchar = fields["email"].attribute("db.VarChar")
    assert varchar is not None and varchar.argument("length") == Literal("320")
    role_map = fields["role"].attribute("map")
    assert role_map is not None and role_map.string("name") == "user_role"
    default = fields["id"].attribute("default")
    assert default is not None and default.argument("value") == Call("autoincrement")
    assert fields["location"].unsupported == "geometry(Point, 4326)" and fields["location"].optional
    relation = fields["posts"].attribute("relation")
    assert relation is not None and relation.string("name") == "Authored"


def test_block_attributes_and_named_arguments_spanning_lines() -> None:
    schema = parse_schema({"s.prisma": SCHEMA})
    user, post = schema.of_kind("model")
    index = user.attribute("index")
    assert index is not None
    assert index.string("map") == "users_email_idx"
    assert index.argument("fields") == ListValue(
        (Call("email", (_arg(Literal("Desc"), "sort"),)), Literal("createdAt"))
    )
    relation = next(f for f in post.fields if f.name == "author").attribute("relation")
    assert relation is not None
    assert relation.argument("fields") == ListValue((Literal("authorId"),))
    assert relation.argument("onDelete") == Literal("Cascade")
    assert relation.string("name") == "Authored"
    generated = next(f for f in post.fields if f.name == "id").attribute("default")
    assert generated is not None
    assert generated.argument("value") == Call(
        "dbgenerated", (_arg(Literal("gen_random_uuid()", is_string=True)),)
    )


def test_enum_values_keep_their_map_and_comments_are_skipped() -> None:
    role = parse_schema({"s.prisma": SCHEMA}).of_kind("enum")[0]
    assert [(v.name, v.line) for v in role.fields] == [("USER", 42), ("ADMIN", 43)]
    admin_map = role.fields[1].attribute("map")
    assert admin_map is not None and admin_map.string("name") == "admin"
    schema_attribute = role.attribute("schema")
    assert schema_attribute is not None and schema_attribute.string("name") == "auth"


def test_a_multi_file_schema_is_one_schema() -> None:
    schema = parse_schema(
        {
            "prisma/schema/schema.prisma": 'datasource db {\n  provider = "postgresql"\n}\n',
            "prisma/schema/user.prisma": "model User {\n  id Int @id\n  posts Post[]\n}\n",
            "prisma/schema/post.prisma": "model Post {\n  id Int @id\n  user User @relation(fields: [userId], references: [id])\n  userId Int\n}\n",
        }
    )
    assert sorted((b.name, b.path) for b in schema.of_kind("model")) == [
        ("Post", "prisma/schema/post.prisma"),
        ("User", "prisma/schema/user.prisma"),
    ]


def test_an_empty_block_on_one_line() -> None:
    schema = parse_schema({"s.prisma": "model A {}\ngenerator client {\n}\n"})
    assert [(b.kind, b.name, b.fields) for b in schema.blocks] == [
        ("model", "A", ()),
        ("generator", "client", ()),
    ]


def test_strings_unescape() -> None:
    schema = parse_schema({"s.prisma": 'model A {\n  id Int @id @default(dbgenerated("\'a\\"b\'"))\n}\n'})
    default = schema.blocks[0].fields[0].attribute("default")
    assert default is not None
    assert default.argument("value") == Call("dbgenerated", (_arg(Literal("'a\"b'", is_string=True)),))


@pytest.mark.parametrize(
    ("text", "line", "problem"),
    [
        ("model A {\n  id Int @id\n", 1, "is not closed"),
        ("model A {\n  id Int", 1, "is not closed"),
        ("model A {\n  id Int @default(", 2, "expected a value"),
        ("model A {\n  id Int @id\n  name String @default(\n}\n", 4, "expected a value"),
        ("modle A {\n}\n", 1, "unknown block `modle`"),
        ("model A {\n  id Int @id\n  id2 Int # comment\n}\n", 3, "unexpected character '#'"),
        ("model A {\n  id\n}\n", 2, "expected a name, found the end of the line"),
        ("model A {\n  id Int @id\n}\nenum A {\n  X\n}\n", 4, "`A` is defined twice"),
        ('datasource db {\n  provider "postgresql"\n}\n', 2, "expected `=`"),
    ],
)
def test_errors_name_the_file_and_line(text: str, line: int, problem: str) -> None:
    with pytest.raises(PrismaSchemaError) as raised:
        parse_schema({"prisma/schema.prisma": text})
    assert raised.value.path == "prisma/schema.prisma"
    assert raised.value.line == line
    assert problem in raised.value.message
    assert str(raised.value).startswith(f"prisma/schema.prisma:{line}: ")


def _arg(value: Value, name: str | None = None) -> Argument:
    return Argument(name, value)


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet='model enum{}()[]@.,:=?"/*\n Ab1_', max_size=80))
def test_any_text_parses_or_raises_a_schema_error(text: str) -> None:
    with contextlib.suppress(PrismaSchemaError):
        parse_schema({"s.prisma": text})
