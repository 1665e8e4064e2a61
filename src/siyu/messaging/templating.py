"""Message templates written by operators, rendered in Jinja2's immutable sandbox.

A template must never run code and an error must never reach a customer, so:
- the environment is `ImmutableSandboxedEnvironment` (no attribute starting with `_`, no
  unsafe callables, no mutation of the context), with `StrictUndefined` (a missing value is
  an error, never an empty string in a message);
- `check_template` parses a template when it is saved and refuses syntax errors (naming the
  line) and variables outside the context a message gets (`contact`, `workspace`, `link`,
  and the names reserved for later: `coupon`, `points`, `recommendations`);
- `render_message` renders all or nothing: any error raises `TemplateRenderError`, and the
  caller (the outbox) records the reason instead of sending.
"""

import contextvars
import functools
import re
from typing import Any

from jinja2 import StrictUndefined, TemplateError, TemplateSyntaxError, meta
from jinja2.sandbox import ImmutableSandboxedEnvironment

from siyu.core.errors import SiyuError, ValidationError

MAX_SOURCE = 20_000  # characters of template source
# what a message's template may name; later issues fill the reserved ones
CONTEXT_NAMES = frozenset({"contact", "workspace", "link", "coupon", "points", "recommendations"})

# `range` is the only way a template can loop without end; every render gets a budget of
# iterations over all its ranges together (nested loops multiply, so a per-range cap is not
# enough)
RANGE_BUDGET = 10_000
_budget: contextvars.ContextVar[list[int]] = contextvars.ContextVar("range_budget")


def _budgeted_range(*args: int) -> range:
    numbers = range(*args)
    left = _budget.get([RANGE_BUDGET])
    left[0] -= len(numbers)
    if left[0] < 0:
        raise OverflowError(f"loops longer than {RANGE_BUDGET} steps in all")
    return numbers


MAX_WIDTH = 10_000  # of a padded or formatted field: `'%09999d'`, `center(…)`, `'{:>N}'`
MAX_OUTPUT = 1_000_000  # characters a render may produce in all
_PERCENT_WIDTH = re.compile(r"%[-#0 +]*(\*|\d+)?(?:\.(\*|\d+))?")
_FORMAT_WIDTH = re.compile(r"\{[^{}]*:[^{}]*?(\d+)[^{}]*\}")


def _check_widths(numbers) -> None:
    for number in numbers:
        if number == "*" or (number and int(number) > MAX_WIDTH):
            raise OverflowError(f"a field wider than {MAX_WIDTH} characters")


class _Sandbox(ImmutableSandboxedEnvironment):
    """Also refuses what can allocate without bound: `'x' * 10**9`, `10 ** 10**9`, and padding
    to a huge width (`'%0400000000d' % 1`, `'x'|center(10**9)`, `'{:>1000000000}'.format(1)`);
    a render's whole output is bounded too (render_message)."""

    intercepted_binops = frozenset({"*", "**", "%"})
    MAX_RESULT = 100_000  # characters or items of a repeated text or list

    def call_binop(self, context, operator: str, left: Any, right: Any) -> Any:
        if operator == "**":
            if isinstance(right, int) and abs(right) > 100:
                raise OverflowError("exponent too large")
            return left**right
        if operator == "%":
            if isinstance(left, str):
                _check_widths(n for pair in _PERCENT_WIDTH.findall(left) for n in pair)
            return left % right
        for seq, times in ((left, right), (right, left)):
            if isinstance(seq, str | list | tuple) and isinstance(times, int):
                if len(seq) * times > self.MAX_RESULT:
                    raise OverflowError("repetition too long")
        return left * right

    def call(self, __context, __obj, *args: Any, **kwargs: Any) -> Any:  # noqa: N807
        # str.format / format_map pad to the widths their format string names
        if getattr(__obj, "__name__", "") in ("format", "format_map") and isinstance(
            getattr(__obj, "__self__", None), str
        ):
            _check_widths(_FORMAT_WIDTH.findall(__obj.__self__))
        return super().call(__context, __obj, *args, **kwargs)


def _bounded(filter_function, width_arg: int):
    """A filter whose `width_arg`-th argument (after the value) is a width to pad to."""

    def bounded(*args: Any, **kwargs: Any) -> Any:
        width = kwargs.get("width", args[width_arg] if len(args) > width_arg else 0)
        if isinstance(width, int) and width > MAX_WIDTH:
            raise OverflowError(f"a field wider than {MAX_WIDTH} characters")
        return filter_function(*args, **kwargs)

    return bounded


# SMS, WeCom and WeChat text are plain; e-mail HTML escapes every value
_ENV = _Sandbox(undefined=StrictUndefined, autoescape=False, keep_trailing_newline=True)
_HTML_ENV = _Sandbox(undefined=StrictUndefined, autoescape=True, keep_trailing_newline=True)
for _environment in (_ENV, _HTML_ENV):
    _environment.globals["range"] = _budgeted_range
    _environment.filters["center"] = _bounded(_environment.filters["center"], 1)
    _environment.filters["indent"] = _bounded(_environment.filters["indent"], 1)
    _format = _environment.filters["format"]
    _environment.filters["format"] = lambda value, *args, _f=_format, **kw: (
        _check_widths(n for pair in _PERCENT_WIDTH.findall(str(value)) for n in pair)
        or _f(value, *args, **kw)
    )


class TemplateRenderError(SiyuError):
    """A template that could not be rendered for one contact: nothing is sent."""

    status = 422
    code = "template_error"


def _env(html: bool) -> ImmutableSandboxedEnvironment:
    return _HTML_ENV if html else _ENV


def check_template(source: Any, field: str = "body", html: bool = False) -> str:
    """The template source, if it parses and names only known variables; else a 422
    naming the field (and the line of a syntax error)."""
    if not isinstance(source, str):
        raise ValidationError(field, "expected a text")
    if len(source) > MAX_SOURCE:
        raise ValidationError(field, "longer than %(n)s characters", {"n": MAX_SOURCE})
    env = _env(html)
    try:
        tree = env.parse(source)
    except TemplateSyntaxError as exc:
        raise ValidationError(
            field, "line %(line)s: %(error)s", {"line": exc.lineno, "error": exc.message}
        ) from exc
    unknown = sorted(meta.find_undeclared_variables(tree) - CONTEXT_NAMES)
    if unknown:
        raise ValidationError(
            field,
            "unknown variable %(name)s",
            {"name": unknown[0]},
            known=sorted(CONTEXT_NAMES),
        )
    return source


@functools.lru_cache(maxsize=512)
def _compiled(source: str, html: bool):
    """A template compiled once per process (compiling it for every message was a sixth of
    the sender's time); templates are immutable values, so sharing them is safe."""
    return _env(html).from_string(source)


def render_message(source: str, context: dict[str, Any], html: bool = False) -> str:
    """The rendered text, or TemplateRenderError with the reason (a missing value, a
    forbidden attribute, a type error, loops or repetitions over the budget): never a
    half-rendered message."""
    token = _budget.set([RANGE_BUDGET])
    try:
        pieces, size = [], 0
        for piece in _compiled(source, html).generate(**context):
            size += len(piece)
            if size > MAX_OUTPUT:
                raise OverflowError(f"the message would be longer than {MAX_OUTPUT} characters")
            pieces.append(piece)
        return "".join(pieces)
    except TemplateError as exc:  # includes UndefinedError and SecurityError
        raise TemplateRenderError(
            "the template cannot be rendered: %(error)s", params={"error": str(exc)}
        ) from exc
    except (TypeError, ValueError, ArithmeticError, LookupError) as exc:
        raise TemplateRenderError(
            "the template cannot be rendered: %(error)s", params={"error": str(exc)}
        ) from exc
    finally:
        _budget.reset(token)


def contact_context(contact, *, workspace=None) -> dict[str, Any]:
    """What a template may read of a contact and its workspace: profile fields and custom
    attributes, never identities (phones, e-mails and ids stay out of message bodies)."""
    return {
        "contact": {
            "id": contact.pk,
            "name": contact.name,
            "gender": contact.gender,
            "birthday": contact.birthday,
            "province": contact.province,
            "city": contact.city,
            "source": contact.source,
            "attributes": dict(contact.attributes or {}),
        },
        "workspace": {
            "name": (workspace or contact.workspace).name,
            "slug": (workspace or contact.workspace).slug,
        },
    }
