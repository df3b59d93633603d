"""A griffe extension for the docs build: render reST ``.. math::`` blocks with MathJax.

The package's docstrings are numpydoc, whose formulas are reStructuredText math
directives; mkdocstrings renders docstrings as Markdown. This extension rewrites

    .. math:: formula            and        .. math::

                                                formula, possibly
                                                over several lines

into ``$$ ... $$`` blocks, which pymdownx.arithmatex (generic mode) hands to MathJax.
The docstrings themselves are unchanged.
"""

from __future__ import annotations

import re

import griffe

_DIRECTIVE = re.compile(r"^(?P<indent>\s*)\.\. math::\s*(?P<rest>.*)$")


def rst_math_to_markdown(text):
    """Replace every ``.. math::`` directive in ``text`` by a ``$$`` display block."""
    lines = text.splitlines()
    out, i = [], 0
    while i < len(lines):
        match = _DIRECTIVE.match(lines[i])
        if match is None:
            out.append(lines[i])
            i += 1
            continue
        indent = match.group("indent")
        body = [match.group("rest")] if match.group("rest") else []
        i += 1
        # the block: blank lines and lines indented deeper than the directive
        while i < len(lines) and (not lines[i].strip()
                                  or len(lines[i]) - len(lines[i].lstrip()) > len(indent)):
            body.append(lines[i].strip())
            i += 1
        while body and not body[-1]:
            body.pop()
        while body and not body[0]:
            body.pop(0)
        formula = " ".join(line for line in body if line)
        out.extend(["", f"{indent}$$", f"{indent}{formula}", f"{indent}$$", ""])
    return "\n".join(out)


class RstMath(griffe.Extension):
    """Rewrite ``.. math::`` directives in every docstring as ``$$`` blocks."""

    def on_instance(self, *, obj, **kwargs):
        if obj.docstring is not None and ".. math::" in obj.docstring.value:
            obj.docstring.value = rst_math_to_markdown(obj.docstring.value)
