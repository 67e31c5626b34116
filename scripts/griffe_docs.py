"""griffe extensions for the documentation site (mkdocs.yml loads them into mkdocstrings).

- ``PublicDocstrings``: every public name must have a docstring. It is given the modules whose public names it checks
  (``srcgrad``: the names in its ``__all__``; a module without ``__all__``, like ``srcgrad.testing``: the functions
  and classes it defines without a leading underscore). Each such function, class, and each public method or
  property a class defines, without a docstring is logged as a warning, which ``mkdocs build --strict`` turns into a
  failed build.
- ``SphinxRoles``: the docstrings' Sphinx roles (``:func:`grad```, ``:class:`~srcgrad.explanation.Explanation```) are
  shown as code (``grad``, ``Explanation``) instead of literally; the source keeps them.
"""

from __future__ import annotations

import re
from typing import Any

import griffe

logger = griffe.get_logger("srcgrad.docs")


class PublicDocstrings(griffe.Extension):
    """Warn about public names of the given modules that have no docstring."""

    def __init__(self, modules: list[str]) -> None:
        super().__init__()
        self.modules = modules

    def on_package(self, *, pkg: griffe.Module, **kwargs: Any) -> None:
        for path in self.modules:
            if path == pkg.path or path.startswith(pkg.path + "."):
                module = pkg if path == pkg.path else pkg[path[len(pkg.path) + 1:]]
                for name, obj in public_objects(module):
                    for missing in undocumented(obj):
                        logger.warning(f"{missing} (public as {path}.{name}) has no docstring")


def public_objects(module: griffe.Module) -> list[tuple[str, griffe.Object]]:
    """(name, resolved object) for the public names of ``module``, as its users see them."""
    if module.exports is not None:
        names = [name if isinstance(name, str) else name.name for name in module.exports]
    else:
        names = [name for name, member in module.members.items()
                 if not name.startswith("_") and not member.is_alias and (member.is_function or member.is_class)]
    found = []
    for name in names:
        member = module[name]
        if member.is_module and name in module.imports:  # `from srcgrad.standalone import emit` over module emit.py
            member = module.modules_collection[module.imports[name]]
        target = member.final_target if member.is_alias else member
        if target.is_function or target.is_class:
            found.append((name, target))
    return found


def undocumented(obj: griffe.Object) -> list[str]:
    """What of ``obj`` lacks a docstring: the object itself, and for a class its public methods and properties."""
    missing = [] if obj.docstring is not None and obj.docstring.value.strip() else [obj.path]
    if obj.is_class:
        for name, member in obj.members.items():
            if name.startswith("_") or member.is_alias:
                continue
            is_property = member.is_attribute and "property" in member.labels
            if (member.is_function or is_property) and not (member.docstring and member.docstring.value.strip()):
                missing.append(member.path)
    return missing


SPHINX_ROLE = re.compile(r":(?:func|class|meth|mod|attr|exc|data|obj):`(~?)([\w.]+)`")


class SphinxRoles(griffe.Extension):
    """Show Sphinx cross-reference roles in docstrings as inline code."""

    def on_package(self, *, pkg: griffe.Module, **kwargs: Any) -> None:
        for obj in walk(pkg):
            if obj.docstring is not None:
                obj.docstring.value = SPHINX_ROLE.sub(as_code, obj.docstring.value)


def as_code(match: re.Match[str]) -> str:
    short, path = match.groups()
    return f"`{path.rsplit('.', 1)[-1] if short else path}`"


def walk(obj: griffe.Object) -> list[griffe.Object]:
    """``obj`` and every object it defines (aliases, which point elsewhere, are left out)."""
    found = [obj]
    for member in obj.members.values():
        if not member.is_alias:
            found.extend(walk(member))
    return found
