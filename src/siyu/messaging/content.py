"""A template's content per channel kind: validated when saved, rendered per message.

Each kind's transport declares its `template_fields` (channels/base.py FieldSpec). A field
marked `template` is Jinja2 source; `params` is an object of name → source (SMS template
parameters, WeChat data items) and `param_list` a list of sources (Tencent's {1}, {2}, …).
Everything else is a plain value (a vendor template code, a choice)."""

from typing import Any

from siyu.core.errors import ValidationError
from siyu.messaging.channels import TRANSPORTS, transport_class
from siyu.messaging.channels.base import FieldSpec
from siyu.messaging.templating import check_template, render_message

MAX_PARAMS = 50


def template_fields(kind: str) -> tuple[FieldSpec, ...]:
    if kind not in TRANSPORTS:
        raise ValidationError(
            "kind", "expected one of %(choices)s", params={"choices": ", ".join(TRANSPORTS)}
        )
    return transport_class(kind).template_fields


def clean_content(kind: str, content: Any) -> dict[str, Any]:
    """The content with every field checked: unknown and missing fields, wrong types, and
    every template's syntax and variables (ValidationError naming `content.<field>`)."""
    if not isinstance(content, dict):
        raise ValidationError("content", "expected an object")
    fields = {f.name: f for f in template_fields(kind)}
    for name in content:
        if name not in fields:
            raise ValidationError(
                f"content.{name}",
                "unknown field; expected one of %(choices)s",
                params={"choices": ", ".join(fields)},
            )
    cleaned: dict[str, Any] = {}
    for name, spec in fields.items():
        path = f"content.{name}"
        value = content.get(name, spec.default)
        if value in (None, "", [], {}):
            if spec.required:
                raise ValidationError(path, "this field is required")
            continue
        cleaned[name] = _clean_value(spec, path, value)
    return cleaned


def _clean_value(spec: FieldSpec, path: str, value: Any) -> Any:
    if spec.kind == "params":
        if not isinstance(value, dict) or len(value) > MAX_PARAMS:
            raise ValidationError(
                path, "expected an object of at most %(n)s names", {"n": MAX_PARAMS}
            )
        return {str(k): _clean_source(spec, f"{path}.{k}", v) for k, v in value.items()}
    if spec.kind == "param_list":
        if not isinstance(value, list) or len(value) > MAX_PARAMS:
            raise ValidationError(path, "expected a list of at most %(n)s items", {"n": MAX_PARAMS})
        return [_clean_source(spec, f"{path}[{i}]", v) for i, v in enumerate(value)]
    if spec.kind == "bool":
        if not isinstance(value, bool):
            raise ValidationError(path, "expected true or false")
        return value
    if spec.kind == "int":
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValidationError(path, "expected a whole number")
        return value
    if spec.choices and value not in spec.choices:
        raise ValidationError(
            path, "expected one of %(choices)s", params={"choices": ", ".join(spec.choices)}
        )
    if spec.template:
        return _clean_source(spec, path, value)
    if not isinstance(value, str):
        raise ValidationError(path, "expected text")
    return value


def _clean_source(spec: FieldSpec, path: str, value: Any) -> str:
    if not isinstance(value, str):
        raise ValidationError(path, "expected text")
    return check_template(value, field=path, html=spec.kind == "html")


def render_content(kind: str, content: dict[str, Any], context: dict[str, Any]) -> dict[str, Any]:
    """Every template field rendered with this context; TemplateRenderError (all or nothing)
    when one cannot be."""
    rendered: dict[str, Any] = {}
    for spec in template_fields(kind):
        if spec.name not in content:
            continue
        value = content[spec.name]
        html = spec.kind == "html"
        if not spec.template:
            rendered[spec.name] = value
        elif spec.kind == "params":
            rendered[spec.name] = {k: render_message(v, context) for k, v in value.items()}
        elif spec.kind == "param_list":
            rendered[spec.name] = [render_message(v, context) for v in value]
        else:
            rendered[spec.name] = render_message(value, context, html=html)
    return rendered
