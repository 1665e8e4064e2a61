"""Data sources: write keys, integration snippets, ingestion status and the live events;
the product catalog built from the events."""

from django.urls import path

from siyu.console.views import data_sources, products

W = "w/<slug:slug>/data-sources/"

urlpatterns = [
    path(W, data_sources.data_sources, name="data_sources"),
    path(W + "events/", data_sources.events, name="data_events"),
    path(W + "keys/new/", data_sources.writekey_create, name="writekey_create"),
    path(W + "keys/<int:key_id>/revoke/", data_sources.writekey_revoke, name="writekey_revoke"),
    path("w/<slug:slug>/products/", products.product_list, name="products"),
]
