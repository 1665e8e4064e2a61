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

from typing import Any

from jinja2 import StrictUndefined, TemplateError, TemplateSyntaxError, meta
from jinja2.sandbox import ImmutableSandboxedEnvironment

from siyu.core.errors import SiyuError, ValidationError

MAX_SOURCE = 20_000  # characters of template source
# what a message's template may name; later issues fill the reserved ones
CONTEXT_NAMES = frozenset({"contact", "workspace", "link", "coupon", "points", "recommendations"})

_ENV = ImmutableSandboxedEnvironment(
    undefined=StrictUndefined,
    autoescape=False,  # SMS, WeCom and WeChat text are plain; e-mail HTML escapes itself
    keep_trailing_newline=True,
)
_HTML_ENV = ImmutableSandboxedEnvironment(
    undefined=StrictUndefined, autoescape=True, keep_trailing_newline=True
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


def render_message(source: str, context: dict[str, Any], html: bool = False) -> str:
    """The rendered text, or TemplateRenderError with the reason (a missing value, a
    forbidden attribute, a type error): never a half-rendered message."""
    try:
        return _env(html).from_string(source).render(**context)
    except TemplateError as exc:  # includes UndefinedError and SecurityError
        raise TemplateRenderError(
            "the template cannot be rendered: %(error)s", params={"error": str(exc)}
        ) from exc
    except (TypeError, ValueError, ArithmeticError, LookupError) as exc:
        raise TemplateRenderError(
            "the template cannot be rendered: %(error)s", params={"error": str(exc)}
        ) from exc


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
