"""The write action of predicted lifetime value: fit a workspace's BG/NBD + Gamma-Gamma
model (clv.py) on its orders (clv_data.py), keep the fit (ClvFit), and write each buyer's
P(alive), expected purchases in 90 days and expected spend in 12 months into ContactScore.
docs/clv.md explains the models and their limits."""

from __future__ import annotations

import datetime
import math
import time
import zoneinfo
from typing import Any

import numpy as np
from django.db import connection, transaction
from django.utils import timezone

from siyu.core import sqlbulk
from siyu.core.audit import Actor, audit
from siyu.core.models import Workspace
from siyu.segments import clv, clv_data
from siyu.segments.models import ClvFit, ContactScore

UNIT = "days"  # a workspace is fitted in days: orders are placed on calendar days
PURCHASES_HORIZON = 90  # days: expected_purchases_90d
VALUE_HORIZON = 365  # days: expected_value_12m_fen
_LOCK_CLASS = 0xC17  # pg_advisory_xact_lock(class, workspace): one CLV fit at a time


def _finite(value: float) -> float | None:
    """JSON has no NaN (and PostgreSQL's jsonb refuses it): None instead."""
    return value if math.isfinite(value) else None


def _lock(workspace: Workspace) -> None:
    """Hold the workspace's CLV lock until the transaction ends: a second fit of the same
    workspace waits for the first."""
    sqlbulk.workspace_lock(_LOCK_CLASS, workspace.pk)


def _write_scores(
    workspace: Workspace,
    summary: clv_data.Summary,
    p_alive: np.ndarray,
    purchases: np.ndarray,
    value: np.ndarray | None,
    at: datetime.datetime,
) -> int:
    """Set-based writes into existing ContactScore rows (scores.py creates them): the fitted
    contacts' values, in chunks of one UPDATE … FROM (VALUES …) each; then the CLV fields of
    the workspace's other rows back to null (a contact whose orders were all refunded since
    the last fit no longer has a prediction). Returns the number of rows updated."""
    table = ContactScore._meta.db_table
    values: list[Any] = (
        [None] * len(summary)
        if value is None
        else [int(v) if math.isfinite(v) else None for v in np.rint(value)]
    )
    # a value the model could not give (nan) is stored as null, never as a number
    rows = [
        (int(cid), _finite(pa), _finite(ep), v)
        for cid, pa, ep, v in zip(
            summary.customer.tolist(), p_alive.tolist(), purchases.tolist(), values, strict=True
        )
    ]
    written = sqlbulk.update_from_values(
        table,
        [("contact_id", "int"), ("p_alive", "float"), ("purchases", "float"), ("value", "int")],
        rows,
        "p_alive = v.p_alive, expected_purchases_90d = v.purchases, "
        "expected_value_12m_fen = v.value, clv_at = %s",
        key="contact_id",
        where=f"{table}.workspace_id = {int(workspace.pk)}",
        extra_params=[at],
    )
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {table} SET p_alive = NULL, expected_purchases_90d = NULL, "
            "expected_value_12m_fen = NULL, clv_at = NULL "
            "WHERE workspace_id = %s AND clv_at IS NOT NULL AND clv_at <> %s",
            [int(workspace.pk), connection.ops.adapt_datetimefield_value(at)],
        )
    return written


def clv_fit_workspace(
    workspace: Workspace, *, actor: Actor, until: datetime.date | None = None
) -> ClvFit:
    """Fit the workspace's orders up to the end of `until` (its time zone; default today),
    in days, and store the fit. On success, every buyer's ContactScore row gets p_alive,
    expected_purchases_90d, expected_value_12m_fen (integer fen: expected purchases in 365
    days × expected spend per purchase; not discounted, no margin applied) and clv_at.

    When BG/NBD cannot be fitted (too few customers, no repeat purchase), the ClvFit is
    stored with `error` set and no score changes. When only Gamma-Gamma cannot (too few
    repeat buyers), P(alive) and expected purchases are written, the expected value stays
    null and the fit's params hold "gamma_gamma": null with the reason.

    One transaction, under a per-workspace lock (_lock): two fits of a workspace never run
    at once. Audited as "clv.fit"."""
    started = time.monotonic()
    tz = zoneinfo.ZoneInfo(workspace.timezone or "Asia/Shanghai")
    now = timezone.now()
    if until is None:
        until = now.astimezone(tz).date()
    elif isinstance(until, datetime.datetime):  # a moment: its day in the workspace's zone
        until = until.astimezone(tz).date()
    with transaction.atomic():
        _lock(workspace)
        summary = clv_data.workspace_summary(workspace.pk, until)
        params: dict[str, Any] = {
            "bgnbd": None,
            "gamma_gamma": None,
            "unit": UNIT,
            "until_day": until.isoformat(),
            "repeat_customers": summary.repeat_customers,
        }
        fit = ClvFit(
            workspace=workspace,
            fitted_at=now,
            until=clv_data.local_day_end(until, tz),
            customers=len(summary),
            params=params,
        )
        try:
            bgnbd = clv.fit_bgnbd(summary.frequency, summary.recency, summary.T)
        except ValueError as exc:
            fit.error = str(exc)
        else:
            params["bgnbd"] = bgnbd.as_dict()
            try:
                gamma_gamma = clv.fit_gamma_gamma(summary.frequency, summary.monetary)
            except ValueError as exc:
                gamma_gamma = None
                params["gamma_gamma_error"] = str(exc)
            else:
                params["gamma_gamma"] = gamma_gamma.as_dict()
            params["spend_frequency_corr"] = _finite(
                clv.spend_frequency_correlation(summary.frequency, summary.monetary)
            )
            args = (summary.frequency, summary.recency, summary.T)
            value = None
            if gamma_gamma is not None:
                value = clv.expected_value(
                    bgnbd, gamma_gamma, VALUE_HORIZON, *args, summary.monetary
                )
            params["scores_written"] = _write_scores(
                workspace,
                summary,
                clv.p_alive(bgnbd, *args),
                clv.expected_purchases(bgnbd, PURCHASES_HORIZON, *args),
                value,
                now,
            )
        fit.seconds = round(time.monotonic() - started, 3)
        fit.save()
        audit(
            workspace=workspace,
            actor=actor,
            action="clv.fit",
            obj=fit,
            after={
                "until": params["until_day"],
                "customers": fit.customers,
                "error": fit.error,
                "scores_written": params.get("scores_written", 0),
            },
        )
    return fit
