"""The REST API: /api/v1/..., docs at /api/docs, schema at /api/openapi.json."""

from ninja import NinjaAPI

from siyu.campaigns.api import broadcasts_router
from siyu.campaigns.journey_api import journeys_router
from siyu.contacts.api import attributes_router, contacts_router, tags_router
from siyu.contacts.imports.api import imports_router
from siyu.core.api import ApiKeyAuth, install_error_handlers
from siyu.messaging.api import channels_router, messaging_router, templates_router
from siyu.segments.api import clv_router, contact_segments_router, segments_router
from siyu.tracking.api import events_router
from siyu.tracking.orders_api import orders_router
from siyu.tracking.products_api import products_router

api = NinjaAPI(
    title="siyu API",
    version="1",
    description="REST API of siyu (私域). Authenticate with `Authorization: Bearer <API key>`; "
    "errors are `{code, message, details}` and name the offending field.",
    urls_namespace="api",
    docs_url="/docs",
    openapi_url="/openapi.json",
    auth=ApiKeyAuth(),
)
install_error_handlers(api)
api.add_router("/v1/contacts", contacts_router)
api.add_router("/v1/tags", tags_router)
api.add_router("/v1/attributes", attributes_router)
api.add_router("/v1", events_router)
api.add_router("/v1", orders_router)
api.add_router("/v1", products_router)
api.add_router("/v1/imports", imports_router)
api.add_router("/v1/segments", segments_router)
api.add_router("/v1", contact_segments_router)
api.add_router("/v1/clv", clv_router)
api.add_router("/v1/channels", channels_router)
api.add_router("/v1/templates", templates_router)
api.add_router("/v1", messaging_router)
api.add_router("/v1/broadcasts", broadcasts_router)
api.add_router("/v1/journeys", journeys_router)
