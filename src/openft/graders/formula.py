"""The `calculate_output` formula of a multi grader, parsed and evaluated without Python's `eval`.

A formula combines the sub-graders' rewards by name: numbers, names, + - * / ^ (or **), parentheses,
unary minus, and the functions min, max, abs, floor, ceil, exp, sqrt and log. Python's parser builds the
tree; only the node types above are accepted, so a formula can never run code or reach an attribute.
"""

from __future__ import annotations

import ast
import math
import operator
from collections.abc import Callable, Mapping
from dataclasses import dataclass

MAX_FORMULA_CHARS = 1_000

_BINARY: dict[type[ast.operator], Callable[[float, float], float]] = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.Pow: operator.pow,
}
_FUNCTIONS: dict[str, Callable[..., float]] = {
    "min": min,
    "max": max,
    "abs": abs,
    "floor": math.floor,
    "ceil": math.ceil,
    "exp": math.exp,
    "sqrt": math.sqrt,
    "log": math.log,
}


class FormulaError(ValueError):
    """A formula that does not parse, uses something not allowed, or fails to evaluate."""


@dataclass(frozen=True)
class Formula:
    text: str
    tree: ast.expr
    names: frozenset[str]  # the variables it reads

    def evaluate(self, values: Mapping[str, float]) -> float:
        try:
            result = float(_evaluate(self.tree, values))
        except (ArithmeticError, ValueError, TypeError) as exc:
            raise FormulaError(f"calculate_output {_shown(self.text)} cannot be computed: {exc}") from None
        if not math.isfinite(result):
            raise FormulaError(f"calculate_output {_shown(self.text)} gave {result}")
        return result


def parse_formula(text: str) -> Formula:
    if not isinstance(text, str) or not text.strip():
        raise FormulaError(
            "calculate_output must be a formula over the graders' names, such as 0.5 * a + 0.5 * b"
        )
    if len(text) > MAX_FORMULA_CHARS:
        raise FormulaError(f"calculate_output is longer than {MAX_FORMULA_CHARS} characters")
    try:
        tree = ast.parse(text.strip().replace("^", "**"), mode="eval").body
    except SyntaxError as exc:
        raise FormulaError(f"calculate_output {_shown(text)} does not parse: {exc.msg}") from None
    names: set[str] = set()
    try:
        _check(tree, text, names)
    except RecursionError:
        raise FormulaError(f"calculate_output {_shown(text)} is nested too deeply") from None
    return Formula(text, tree, frozenset(names))


def _check(node: ast.AST, text: str, names: set[str]) -> None:
    if isinstance(node, ast.Constant):
        if isinstance(node.value, bool) or not isinstance(node.value, int | float):
            raise FormulaError(f"calculate_output {_shown(text)}: only numbers may appear as constants")
    elif isinstance(node, ast.Name):
        names.add(node.id)
    elif isinstance(node, ast.BinOp) and type(node.op) in _BINARY:
        _check(node.left, text, names)
        _check(node.right, text, names)
    elif isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub | ast.UAdd):
        _check(node.operand, text, names)
    elif (
        isinstance(node, ast.Call)
        and isinstance(node.func, ast.Name)
        and node.func.id in _FUNCTIONS
        and node.args
        and not node.keywords
    ):
        for argument in node.args:
            _check(argument, text, names)
    else:
        allowed = "numbers, grader names, + - * / ^, parentheses and " + ", ".join(_FUNCTIONS)
        raise FormulaError(f"calculate_output {_shown(text)} uses something not allowed; allowed: {allowed}")


def _evaluate(node: ast.expr, values: Mapping[str, float]) -> float:
    if isinstance(node, ast.Constant):
        return float(node.value)  # type: ignore[arg-type]  # numbers only (checked at parse)
    if isinstance(node, ast.Name):
        return values[node.id]
    if isinstance(node, ast.BinOp):
        left, right = _evaluate(node.left, values), _evaluate(node.right, values)
        if isinstance(node.op, ast.Pow) and abs(right) > 1_000:
            raise ValueError("exponent too large")
        return _BINARY[type(node.op)](left, right)
    if isinstance(node, ast.UnaryOp):
        operand = _evaluate(node.operand, values)
        return -operand if isinstance(node.op, ast.USub) else operand
    assert isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
    return float(_FUNCTIONS[node.func.id](*(_evaluate(argument, values) for argument in node.args)))


def _shown(text: str) -> str:
    return repr(text) if len(text) <= 60 else repr(text[:57] + "...")
