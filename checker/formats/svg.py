"""Small SVG building blocks for the pictures of memory (checker/formats/pictures/).

A picture is a string holding one <svg> element: self-contained (no external
fonts, images or styles beyond the page's CSS classes), with ids where a test
or a reader needs to find a part of it. `Focus` says what to point at: the
numbers the violation's explanation mentions and the step that broke it.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from html import escape
from typing import Any

from mmcheck.checker.trace import Step

FONT = 11  # px; the page sets font-family on svg text


@dataclass(frozen=True)
class Focus:
    """What a picture points at: the explanation of the violation (checker/explain.py
    `Why` nodes, data) and its step."""

    why: tuple[Any, ...] = ()
    step: Step | None = None

    def numbers(self, *keys: str) -> frozenset[int]:
        """The integers the explanation gives for one of `keys` (pfn, start, va...): in
        the quantifiers' bindings when there are some, else anywhere."""
        from mmcheck.checker.explain import numbers

        return numbers(self.why, *keys)

    def argument(self, subsystem: str, name: str) -> frozenset[int]:
        """The failing step's argument called `name` in the subsystem's vocabulary (the
        address a kfree or ksize was given), if it has one."""
        from mmcheck.checker.decode import params

        if self.step is None:
            return frozenset()
        named = dict(zip(params(subsystem, self.step.op), self.step.args, strict=False))
        value = named.get(name)
        return frozenset((value,)) if isinstance(value, int) else frozenset()


def attrs(**kw: object) -> str:
    """Attributes in the order given: class_ -> class, snake_case -> kebab-case."""
    parts = []
    for k, v in kw.items():
        if v is None:
            continue
        name = "class" if k == "class_" else k.replace("_", "-")
        parts.append(f'{name}="{escape(str(v), quote=True)}"')
    return " ".join(parts)


def _element(tag: str, title: str | None, **kw: object) -> str:
    if title is None:
        return f"<{tag} {attrs(**kw)}/>"
    return f"<{tag} {attrs(**kw)}><title>{escape(title)}</title></{tag}>"


def rect(x: float, y: float, w: float, h: float, fill: str, title: str | None = None,
         **kw: object) -> str:
    """A rectangle (at least half a pixel wide), with a tooltip when `title` is given."""
    return _element("rect", title, x=f"{x:.1f}", y=f"{y:.1f}", width=f"{max(w, 0.5):.1f}",
                    height=f"{h:.1f}", fill=fill, **kw)


def line(x1: float, y1: float, x2: float, y2: float, stroke: str, title: str | None = None,
         **kw: object) -> str:
    return _element("line", title, x1=f"{x1:.1f}", y1=f"{y1:.1f}", x2=f"{x2:.1f}",
                    y2=f"{y2:.1f}", stroke=stroke, **kw)


def text(x: float, y: float, s: str, **kw: object) -> str:
    return f"<text {attrs(x=f'{x:.1f}', y=f'{y:.1f}', font_size=FONT, **kw)}>{escape(s)}</text>"


def svg(width: float, height: float, body: Iterable[str], **kw: object) -> str:
    head = attrs(xmlns="http://www.w3.org/2000/svg", width=f"{width:.0f}", height=f"{height:.0f}",
                 viewBox=f"0 0 {width:.0f} {height:.0f}", role="img", **kw)
    return f"<svg {head}>" + "".join(body) + "</svg>"


def order_colour(order: int) -> str:
    """A distinct, readable fill per buddy order (0 .. 11)."""
    hue = (order * 47 + 140) % 360
    return f"hsl({hue}, 55%, 62%)"
