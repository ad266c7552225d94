"""An estimator's parameters read from its source: signature and docstring, without importing it.

The command line's configuration schema is derived from
:class:`skbpr.HybridBPR`'s ``__init__`` (names, annotations, defaults) and
its numpydoc ``Parameters`` section (allowed values ``{"a", "b"}`` and the
first sentence of each description). Reading the source text rather than
importing the class keeps ``skbpr --help`` and ``import skbpr.config`` free
of torch.
"""

from __future__ import annotations

import ast
import importlib.util
import re
from dataclasses import dataclass
from typing import Any

__all__ = ["Parameter", "read_parameters"]

_ENTRY = re.compile(r"^(?P<names>[A-Za-z_][\w, ]*?) : (?P<type>.+)$")
_CHOICES = re.compile(r"\{(?P<values>[^}]*)\}")


@dataclass(frozen=True)
class Parameter:
    """One ``__init__`` parameter: name, annotation, default, allowed values, summary.

    Examples
    --------
    >>> from skbpr.utils.signature import Parameter
    >>> Parameter("epochs", "int", 50, None, "Passes over the training positives.").summary
    'Passes over the training positives.'
    """

    name: str
    annotation: str
    default: Any
    choices: tuple[str, ...] | None
    summary: str


def _docstring_entries(doc: str) -> dict[str, tuple[str, str]]:
    """Parameter name -> (type text, first sentence) from a numpydoc ``Parameters`` section."""
    lines = doc.splitlines()
    try:
        start = next(i for i, line in enumerate(lines) if line.strip() == "Parameters") + 2
    except StopIteration:
        return {}
    entries: dict[str, tuple[str, str]] = {}
    names: list[str] = []
    kind = ""
    text: list[str] = []

    def close() -> None:
        sentence = " ".join(text).split(". ")[0].rstrip(".") + "." if text else ""
        for name in names:
            entries[name] = (kind, sentence)

    for line in lines[start:]:
        stripped = line.strip()
        if stripped and set(stripped) == {"-"}:  # the next section's underline
            text_before = text[:-1] if text else text
            text[:] = text_before
            break
        match = _ENTRY.match(stripped) if not line.startswith(" " * 8) else None
        if match and not line.startswith(" " * 5):
            close()
            names = [n.strip() for n in match["names"].split(",")]
            kind, text = match["type"], []
        elif stripped:
            text.append(stripped)
    close()
    return entries


def read_parameters(module: str, class_name: str) -> list[Parameter]:
    """The ``__init__`` parameters of ``module.class_name``, in signature order.

    Parameters
    ----------
    module : str
        Dotted module name; its source is read, never executed.
    class_name : str
        The class.

    Returns
    -------
    list of Parameter
        Defaults are the literal values of the signature; ``choices`` are the
        values between braces of the docstring's type line.

    Examples
    --------
    >>> from skbpr.utils.signature import read_parameters
    >>> params = {p.name: p for p in read_parameters("skbpr.models.hybrid", "HybridBPR")}
    >>> params["optimizer"].choices
    ('adagrad', 'adam', 'sgd')
    """
    spec = importlib.util.find_spec(module)
    if spec is None or spec.origin is None:
        raise ImportError(f"cannot find the source of {module}")
    with open(spec.origin, encoding="utf-8") as handle:
        tree = ast.parse(handle.read())
    cls = next(n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == class_name)
    init = next(n for n in cls.body if isinstance(n, ast.FunctionDef) and n.name == "__init__")
    docs = _docstring_entries(ast.get_docstring(cls) or "")
    args = [*init.args.args[1:], *init.args.kwonlyargs]
    defaults = [None] * (len(init.args.args) - 1 - len(init.args.defaults)) + list(init.args.defaults)
    defaults += list(init.args.kw_defaults)
    out = []
    for arg, default in zip(args, defaults, strict=True):
        kind, summary = docs.get(arg.arg, ("", ""))
        found = _CHOICES.search(kind)
        choices = None
        if found:
            choices = tuple(ast.literal_eval(f"({found['values']},)"))
        out.append(
            Parameter(
                name=arg.arg,
                annotation=ast.unparse(arg.annotation) if arg.annotation is not None else "",
                default=None if default is None else ast.literal_eval(default),
                choices=choices,
                summary=summary,
            )
        )
    return out
