"""What keeps the profile model cheap to import: field docstrings read once, a costly pattern compiled late.

Field descriptions: pydantic's `use_attribute_docstrings` finds each class's source by walking the stack and parses it
class by class (about 40 ms for the profile's 37 models at every start). This reads the module's
source once, with the same rule: a string statement right after an annotated attribute describes it,
cleaned as `inspect.cleandoc` does, and never replaces a description given in `Field(description=)`.
It must run before a model's schema is built: the models use `defer_build`, so at the module's end.
"""

from __future__ import annotations

import ast
import functools
import inspect
import itertools
import sys
from collections.abc import Callable

from pydantic import BaseModel, ValidationError
from pydantic_core import PydanticCustomError, SchemaValidator, core_schema


def _docs(body: list[ast.stmt]) -> dict[str, str]:
    out: dict[str, str] = {}
    for before, stmt in itertools.pairwise(body):
        if (isinstance(before, ast.AnnAssign) and isinstance(before.target, ast.Name)
                and isinstance(stmt, ast.Expr) and isinstance(stmt.value, ast.Constant)
                and isinstance(stmt.value.value, str)):
            out[before.target.id] = inspect.cleandoc(stmt.value.value)
    return out


def describe_fields(module_name: str) -> None:
    """Give every field of the module's top-level models its attribute docstring as description."""
    module = sys.modules[module_name]
    try:
        tree = ast.parse(inspect.getsource(module))
    except (OSError, TypeError):
        return  # no source shipped: no descriptions, as pydantic's own extraction would give
    for node in tree.body:
        if not isinstance(node, ast.ClassDef):
            continue
        model = getattr(module, node.name, None)
        if not (isinstance(model, type) and issubclass(model, BaseModel)):
            continue
        docs = _docs(node.body)
        for name, info in model.__pydantic_fields__.items():
            if info.description is None and name in docs:
                info.description = docs[name]


@functools.cache
def _validator(pattern: str) -> SchemaValidator:
    return SchemaValidator(core_schema.str_schema(pattern=pattern))


def late_pattern(pattern: str) -> Callable[[str], str]:
    """An AfterValidator function checking `pattern` like `Field(pattern=...)` (same regex engine, same
    error) but compiled on first use rather than when the model is built: a bounded repetition of a
    Unicode class (`[\\w.-]{0,127}`) takes 0.15 s to compile, more than the rest of the profile model.
    Pair it with `WithJsonSchema({"pattern": pattern, "type": "string"})` for the same JSON Schema."""
    def check(value: str) -> str:
        try:
            _validator(pattern).validate_python(value)
        except ValidationError as exc:
            err = exc.errors()[0]
            raise PydanticCustomError(err["type"], "String should match pattern '{pattern}'", err.get("ctx")) from None
        return value

    return check
