"""Operator templates: checked when saved, rendered in the sandbox all or nothing, and
checked against each channel's limits."""

import pytest

from siyu.core.errors import ValidationError
from siyu.messaging.limits import check_sms, check_wecom_text, sms_length
from siyu.messaging.templating import (
    TemplateRenderError,
    check_template,
    contact_context,
    render_message,
)


def test_a_template_renders_contact_fields_and_attributes(cast, make_contact):
    contact = make_contact(name="王芳")
    contact.attributes = {"vip_level": 3}
    text = render_message(
        "{{ contact.name }}您好，您是 {{ contact.attributes.vip_level }} 级会员。"
        "— {{ workspace.name }}",
        contact_context(contact),
    )
    assert text == "王芳您好，您是 3 级会员。— 星巴克演示"


def test_syntax_errors_name_the_line_and_unknown_variables_are_refused():
    with pytest.raises(ValidationError) as exc:
        check_template("你好\n{{ contact.name ", field="body")
    assert exc.value.field == "body" and "line 2" in exc.value.message
    with pytest.raises(ValidationError) as exc:
        check_template("{{ customer.name }}", field="body")
    assert "customer" in exc.value.message
    assert check_template("{% if contact.city %}{{ contact.city }}{% endif %}") is not None


@pytest.mark.parametrize(
    "source",
    [
        "{{ contact.__class__ }}",
        "{{ ''.__class__.__mro__ }}",
        "{{ contact.name.__class__.__subclasses__() }}",
        "{{ contact.attributes.update({'x': 1}) }}",  # the immutable sandbox
        "{{ contact.nickname }}",  # missing: an error, never an empty string
        "{{ contact.attributes.vip_level + 'x' }}",
        "{% for i in range(100000000) %}{% endfor %}",
        "{% for i in range(9999) %}{% for j in range(9999) %}{% endfor %}{% endfor %}",
        "{{ 'x' * 1000000000 }}",
        "{{ 10 ** 1000000000 }}",
    ],
)
def test_unsafe_or_broken_templates_never_render(cast, make_contact, source):
    contact = make_contact(name="王芳")
    contact.attributes = {"vip_level": 3}
    with pytest.raises(TemplateRenderError):
        render_message(source, contact_context(contact))


def test_html_bodies_escape_values(cast, make_contact):
    contact = make_contact(name="<script>alert(1)</script>")
    html = render_message("<p>{{ contact.name }}</p>", contact_context(contact), html=True)
    assert html == "<p>&lt;script&gt;alert(1)&lt;/script&gt;</p>"


def test_sms_segments_follow_the_encoding():
    assert sms_length("a" * 160) == sms_length("a" * 160).__class__(160, 1, "gsm7")
    assert sms_length("a" * 161).segments == 2
    assert sms_length("{" * 80).characters == 160  # extended characters take two units
    assert (sms_length("好" * 70).segments, sms_length("好" * 71).segments) == (1, 2)
    assert sms_length("好" * 134).segments == 2 and sms_length("好" * 135).segments == 3
    assert sms_length("😀").characters == 2
    # the sign name counts
    assert check_sms("好" * 66, sign_name="星巴克").segments == 2
    with pytest.raises(ValidationError) as exc:
        check_sms("好" * 700)
    assert "segments" in exc.value.message
    with pytest.raises(ValidationError):
        check_sms("  ")


def test_wecom_text_is_limited_in_bytes():
    assert check_wecom_text("好" * 1333) == 3999
    with pytest.raises(ValidationError) as exc:
        check_wecom_text("好" * 1334)
    assert "4000" in exc.value.message


def test_loops_within_the_budget_render(cast, make_contact):
    contact = make_contact(name="王芳")
    text = render_message("{% for i in range(3) %}{{ i }}{% endfor %}", contact_context(contact))
    assert text == "012"
    # the budget is per render: the next one starts afresh
    long = "{% for i in range(6000) %}{% endfor %}ok"
    assert render_message(long, contact_context(contact)) == "ok"
    assert render_message(long, contact_context(contact)) == "ok"
    assert render_message("{{ '-' * 3 }}{{ 2 ** 3 }}{{ 3 * 4 }}", contact_context(contact)) == (
        "---812"
    )


@pytest.mark.parametrize(
    "source",
    [
        "{{ '%0400000000d' % 1 }}",
        "{{ '%*d' % (400000000, 1) }}",
        "{{ 'x'|center(1000000000) }}",
        "{{ 'a\\nb'|indent(1000000000) }}",
        "{{ '{:>1000000000}'.format(1) }}",
        "{{ '{0:>1000000000}'.format_map({}) }}",
        "{{ '%0400000000d'|format(1) }}",
        "{% for i in range(10000) %}{{ 'x' * 100000 }}{% endfor %}",
    ],
)
def test_padding_and_output_are_bounded(source):
    with pytest.raises(TemplateRenderError):
        render_message(source, {})


def test_ordinary_padding_and_formatting_still_work():
    assert render_message("{{ '%05d' % 42 }}|{{ '{:>4}'.format(7) }}|{{ 'ab'|center(6) }}", {}) == (
        "00042|   7|  ab  "
    )
