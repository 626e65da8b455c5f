"""L1 expressions written by operators (sources defined in admin): parsed, checked, and tried.

An expression is accepted only when PostgreSQL's own parser (pglast) reads it as one value
expression, built from the L0 columns, constants, operators, casts to the column types,
``CASE``/``COALESCE``/``NULLIF``/``GREATEST``/``LEAST`` and the functions of
``ALLOWED_FUNCTIONS``: no subquery, no statement, no aggregate or window, no parameter, no
qualified or ``*`` column. What is kept is the expression as pglast prints it back (comments
dropped), so the text that reaches SQL is the text that was checked. ``try_l1_expressions``
then runs the dataset's L1 step against an empty L0 in a transaction that is rolled back, so
types that do not fit and functions called wrongly are refused before any file is loaded.
"""

import dataclasses
import secrets

import psycopg
from pglast import ast, parse_sql
from pglast.enums import A_Expr_Kind, SetOperation
from pglast.parser import ParseError
from pglast.stream import RawStream
from pglast.visitors import Visitor

from pipelines.datasets import Dataset
from pipelines.loading import Tables, create_empty_tables, l1_insert

# Functions an expression may call, by name (optionally qualified with pg_catalog).
ALLOWED_FUNCTIONS = frozenset(
    {
        "abs",
        "btrim",
        "ceil",
        "char_length",
        "concat",
        "concat_ws",
        "date_part",
        "date_trunc",
        "extract",
        "floor",
        "initcap",
        "left",
        "length",
        "lower",
        "lpad",
        "ltrim",
        "make_date",
        "md5",
        "nullif",
        "overlay",
        "position",
        "regexp_replace",
        "replace",
        "right",
        "round",
        "rpad",
        "rtrim",
        "split_part",
        "strpos",
        "substr",
        "substring",
        "to_char",
        "to_date",
        "to_number",
        "to_timestamp",
        "translate",
        "trim",
        "trunc",
        "upper",
    }
)
# Types an expression may cast to (as pglast names them, pg_catalog types unqualified).
ALLOWED_CASTS = frozenset(
    {
        "text",
        "varchar",
        "bpchar",
        "int2",
        "int4",
        "int8",
        "numeric",
        "float4",
        "float8",
        "bool",
        "date",
        "timestamp",
    }
)
ALLOWED_OPERATORS = frozenset(
    {"+", "-", "*", "/", "%", "^", "||", "=", "<>", "!=", "<", ">", "<=", ">="}
    | {"~", "~*", "!~", "!~*", "~~", "~~*", "!~~", "!~~*"}
)
ALLOWED_EXPRESSION_KINDS = frozenset(
    {
        A_Expr_Kind.AEXPR_OP,
        A_Expr_Kind.AEXPR_IN,
        A_Expr_Kind.AEXPR_LIKE,
        A_Expr_Kind.AEXPR_ILIKE,
        A_Expr_Kind.AEXPR_NULLIF,
        A_Expr_Kind.AEXPR_DISTINCT,
        A_Expr_Kind.AEXPR_NOT_DISTINCT,
        A_Expr_Kind.AEXPR_BETWEEN,
        A_Expr_Kind.AEXPR_NOT_BETWEEN,
    }
)
# The nodes a value expression is made of; anything else (SubLink, ParamRef, A_Star,
# RowExpr, ...) is refused.
ALLOWED_NODES = (
    ast.A_Const,
    ast.A_Expr,
    ast.BoolExpr,
    ast.BooleanTest,
    ast.CaseExpr,
    ast.CaseWhen,
    ast.CoalesceExpr,
    ast.ColumnRef,
    ast.FuncCall,
    ast.MinMaxExpr,
    ast.NullTest,
    ast.SQLValueFunction,
    ast.TypeCast,
    ast.TypeName,
    ast.String,
    ast.Integer,
    ast.Float,
    ast.Boolean,
)
# Parts of a SELECT that make it more than "SELECT <one expression>".
SELECT_CLAUSES = (
    "distinctClause",
    "intoClause",
    "fromClause",
    "whereClause",
    "groupClause",
    "havingClause",
    "windowClause",
    "valuesLists",
    "sortClause",
    "limitOffset",
    "limitCount",
    "lockingClause",
    "withClause",
    "larg",
    "rarg",
)


def check_l1_expression(expression: str, l0_columns: set[str]) -> str:
    """The expression as it will run (printed back by the parser), or ``ValueError`` saying
    why it is refused: not one expression, a subquery or statement, a column that is not one
    of ``l0_columns``, a function, cast or operator that is not allowed."""
    if not expression.strip():
        raise ValueError("the expression is empty")
    try:
        statements = parse_sql(f"SELECT {expression}")
    except ParseError as error:
        raise ValueError(f"not an SQL expression: {error}") from None
    if len(statements) != 1:
        raise ValueError("one expression only: it holds several statements")
    select = statements[0].stmt
    if not isinstance(select, ast.SelectStmt) or any(
        getattr(select, clause, None) for clause in SELECT_CLAUSES
    ):
        raise ValueError("one expression only: no FROM, WHERE or other clause")
    if select.op != SetOperation.SETOP_NONE or len(select.targetList or ()) != 1:
        raise ValueError("one expression only: not a list of them")
    target = select.targetList[0]
    if target.name:
        raise ValueError("no alias: the L1 column's name is the alias")
    _ExpressionChecker(l0_columns)(target.val)
    return RawStream()(target.val)


class _ExpressionChecker(Visitor):
    """Raises ``ValueError`` at the first node an L1 expression may not hold."""

    def __init__(self, l0_columns: set[str]):
        super().__init__()
        self.l0_columns = l0_columns

    def visit(self, ancestors, node) -> None:
        if isinstance(node, ast.SubLink | ast.SelectStmt):
            raise ValueError("a subquery is not allowed")
        if not isinstance(node, ALLOWED_NODES):
            raise ValueError(f"{type(node).__name__} is not allowed in an expression")
        check = getattr(self, f"_check_{type(node).__name__}", None)
        if check is not None:
            check(node)

    def _check_SQLValueFunction(self, node: ast.SQLValueFunction) -> None:
        # CURRENT_DATE, LOCALTIMESTAMP, ... but not CURRENT_USER and the like.
        if "DATE" not in node.op.name and "TIME" not in node.op.name:
            raise ValueError(f"{node.op.name.removeprefix('SVFOP_')} is not allowed")

    def _check_ColumnRef(self, node: ast.ColumnRef) -> None:
        fields = node.fields
        if len(fields) != 1 or not isinstance(fields[0], ast.String):
            raise ValueError("columns are named alone (no table, no *)")
        name = fields[0].sval
        if name not in self.l0_columns:
            raise ValueError(f"column {name!r} is not a column of L0")

    def _check_FuncCall(self, node: ast.FuncCall) -> None:
        name = _unqualified(node.funcname)
        if name not in ALLOWED_FUNCTIONS:
            raise ValueError(
                f"function {'.'.join(part.sval for part in node.funcname)!r} is not allowed; "
                f"allowed: {', '.join(sorted(ALLOWED_FUNCTIONS))}"
            )
        if node.agg_star or node.agg_distinct or node.agg_order or node.agg_filter or node.over:
            raise ValueError(f"{name}: aggregates and windows are not allowed")

    def _check_TypeName(self, node: ast.TypeName) -> None:
        name = _unqualified(node.names)
        if name not in ALLOWED_CASTS or node.arrayBounds or node.setof:
            raise ValueError(f"a cast to {name!r} is not allowed")

    def _check_A_Expr(self, node: ast.A_Expr) -> None:
        if node.kind not in ALLOWED_EXPRESSION_KINDS:
            raise ValueError(f"{node.kind.name} expressions are not allowed")
        if node.kind in (A_Expr_Kind.AEXPR_BETWEEN, A_Expr_Kind.AEXPR_NOT_BETWEEN):
            return
        names = [part.sval for part in node.name]
        if len(names) != 1 or names[0] not in ALLOWED_OPERATORS:
            raise ValueError(f"operator {'.'.join(names)!r} is not allowed")


def _unqualified(names) -> str | None:
    parts = [part.sval for part in names]
    if len(parts) == 2 and parts[0] == "pg_catalog":
        return parts[1]
    return parts[0] if len(parts) == 1 else None


class TrialRolledBack(Exception):
    """Raised to end the trial's transaction, so that it is rolled back."""


def try_l1_expressions(conn: psycopg.Connection, dataset: Dataset) -> None:
    """Run the dataset's L1 step against an empty L0, then roll everything back.

    The tables are made under a schema of their own (random name), so no existing table is
    touched. Raises ``psycopg.Error`` with PostgreSQL's message when the step fails.
    """
    trial = dataclasses.replace(dataset, organisation="l1_trial", name=secrets.token_hex(8))
    try:
        with conn.transaction():
            create_empty_tables(conn, trial)
            with conn.cursor() as cursor:
                cursor.execute(
                    l1_insert(trial, Tables(trial.schema), 0), {"datafile": "", "member": ""}
                )
            raise TrialRolledBack
    except TrialRolledBack:
        pass
