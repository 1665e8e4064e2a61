"""`siyu clv fit`: fit BG/NBD + Gamma-Gamma (docs/clv.md) and print the parameters as one JSON
object on stdout.

    siyu clv fit --csv FILE --customer COL --date COL --amount COL [--until DATE]
                 [--unit days|weeks]
    siyu clv fit --workspace SLUG [--until DATE]

With --csv the file is only read (nothing is stored); the amounts keep the file's unit and
gamma is in it. With --workspace the fit is stored (ClvFit) and the buyers' scores written,
as the nightly task does; the unit is days and amounts are fen."""

import datetime
import json
import math
import time
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from siyu.core.audit import Actor
from siyu.core.errors import SiyuError
from siyu.core.models import Workspace
from siyu.segments import clv, clv_data
from siyu.segments.clv_actions import clv_fit_workspace


def _clean(value: Any) -> Any:
    """NaN and infinities as null: the output must be strict JSON."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    return value


class Command(BaseCommand):
    help = (
        "Fit the BG/NBD and Gamma-Gamma lifetime-value models to a transaction CSV or to a "
        "workspace's orders; print the parameters as JSON."
    )

    def add_arguments(self, parser):
        sub = parser.add_subparsers(dest="action", required=True)
        fit = sub.add_parser("fit", help="fit the models and print their parameters as JSON")
        source = fit.add_mutually_exclusive_group(required=True)
        source.add_argument("--csv", help="a transaction CSV with a header row")
        source.add_argument("--workspace", help="a workspace's slug: fit its orders, store it")
        fit.add_argument("--customer", help="the CSV's customer id column")
        fit.add_argument("--date", help="the CSV's date column (20260131, 2026-01-31, ...)")
        fit.add_argument("--amount", help="the CSV's amount column (a decimal)")
        fit.add_argument(
            "--until",
            help="the last day of the calibration period (default: the file's last date; "
            "for a workspace, today in its time zone)",
        )
        fit.add_argument(
            "--unit",
            choices=sorted(clv_data.UNITS),
            help="time unit of the CSV fit (default: days; a workspace is always in days)",
        )

    def handle(self, *args, action: str, **options):
        until = None
        if options["until"]:
            try:
                until = clv_data.parse_until(options["until"])
            except ValueError as exc:
                raise CommandError(f"--until: {exc}") from exc
        started = time.monotonic()
        if options["csv"]:
            result = self._fit_csv(options, until)
        else:
            result = self._fit_workspace(options, until)
        result["seconds"] = round(time.monotonic() - started, 3)
        self.stdout.write(json.dumps(_clean(result), ensure_ascii=False, allow_nan=False))

    def _fit_csv(self, options: dict[str, Any], until: datetime.date | None) -> dict[str, Any]:
        missing = [f"--{name}" for name in ("customer", "date", "amount") if not options[name]]
        if missing:
            raise CommandError(f"--csv needs {', '.join(missing)} (the column names)")
        unit = options["unit"] or "days"
        try:
            data = clv_data.read_transactions_csv(
                options["csv"],
                customer=options["customer"],
                date=options["date"],
                amount=options["amount"],
            )
        except SiyuError as exc:
            raise CommandError(f"{options['csv']}: {exc.message}") from exc
        if until is None:
            until = clv_data.EPOCH + datetime.timedelta(days=int(data.day.max()))
        summary = clv_data.summarise(data.customer, data.day, data.amount, until=until, unit=unit)
        try:
            bgnbd = clv.fit_bgnbd(summary.frequency, summary.recency, summary.T)
        except ValueError as exc:
            raise CommandError(str(exc)) from exc
        result: dict[str, Any] = {"bgnbd": bgnbd.as_dict(), "gamma_gamma": None}
        try:
            result["gamma_gamma"] = clv.fit_gamma_gamma(
                summary.frequency, summary.monetary
            ).as_dict()
        except ValueError as exc:
            result["gamma_gamma_error"] = str(exc)
        result.update(
            customers=len(summary),
            repeat_customers=summary.repeat_customers,
            transactions=len(data.day),
            unit=unit,
            until=until.isoformat(),
            spend_frequency_corr=clv.spend_frequency_correlation(
                summary.frequency, summary.monetary
            ),
        )
        return result

    def _fit_workspace(
        self, options: dict[str, Any], until: datetime.date | None
    ) -> dict[str, Any]:
        for name in ("customer", "date", "amount"):
            if options[name]:
                raise CommandError(f"--{name} applies to --csv only")
        if options["unit"] not in (None, "days"):
            raise CommandError("a workspace is fitted in days; --unit applies to --csv only")
        ws = Workspace.objects.filter(slug=options["workspace"]).first()
        if ws is None:
            raise CommandError(f"no workspace {options['workspace']!r}")
        fit = clv_fit_workspace(ws, actor=Actor.system("cli:clv"), until=until)
        if fit.error:
            raise CommandError(f"{ws.slug}: the CLV fit failed (stored as {fit.pk}): {fit.error}")
        params = dict(fit.params)
        result: dict[str, Any] = {
            "bgnbd": params.pop("bgnbd"),
            "gamma_gamma": params.pop("gamma_gamma"),
            "customers": fit.customers,
        }
        result.update(params)
        result["fit_id"] = fit.pk
        return result
