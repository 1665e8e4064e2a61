"""Human labels for stored codes, translated."""

from django.utils.translation import gettext_lazy as _

from siyu.contacts.models import Source


def source_label(code: str):
    if not code:
        return _("Unknown")
    try:
        return Source(code).label
    except ValueError:
        return code
