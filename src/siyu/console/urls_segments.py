"""Segments (分群): list, builder, live preview, detail, static lists; and 客户分层, the
pool by lifecycle stage and value tier, with its thresholds."""

from django.urls import path

from siyu.console.views import pool_overview as overview
from siyu.console.views import segments
from siyu.console.views import segments_builder as builder
from siyu.console.views import segments_scoring as scoring
from siyu.console.views import segments_static as static

W = "w/<slug:slug>/segments/"
S = W + "<int:segment_id>/"
T = "w/<slug:slug>/tiers/"

urlpatterns = [
    path(W, segments.segment_list, name="segments"),
    path(W + "new/", builder.segment_new, name="segment_new"),
    path(W + "preview/", builder.segment_preview, name="segment_preview"),
    path(W + "static/new/", static.static_new, name="segment_static_new"),
    path(W + "from-selection/", static.from_selection, name="segment_from_selection"),
    path(S, segments.segment_detail, name="segment"),
    path(S + "edit/", builder.segment_edit, name="segment_edit"),
    path(S + "refresh/", segments.segment_refresh, name="segment_refresh"),
    path(S + "archive/", segments.segment_archive, name="segment_archive"),
    path(S + "upload/", static.static_upload, name="segment_upload"),
    path(S + "members/remove/", static.static_remove, name="segment_member_remove"),
    path(T, overview.pool_overview, name="pool_overview"),
    path(T + "recompute/", overview.pool_recompute, name="pool_recompute"),
    path(T + "settings/", scoring.scoring_settings, name="scoring_settings"),
    path(T + "clv/", overview.clv_refit, name="clv_refit"),
]
