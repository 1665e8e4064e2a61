"""Predicted lifetime value (segments/clv.py, clv_data.py, clv_actions.py, `siyu clv fit`):
the published CDNOW estimates reproduced from the raw transactions, the predictions against
their definitions, the CSV reader's errors, and a workspace fit writing contact scores.

The CDNOW files ship inside the `lifetimes` package (a dev dependency). It is only located,
never imported: every number here is computed by siyu's own code."""

import datetime
import functools
import importlib.util
import io
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from scipy import integrate, optimize, stats
from scipy.special import hyp2f1

from siyu.core.audit import Actor
from siyu.core.models import AuditLog
from siyu.segments import clv, clv_data
from siyu.segments.clv_actions import clv_fit_workspace
from siyu.segments.models import ClvFit, ContactScore
from siyu.tracking.models import Order
from siyu.tracking.orders import OrderInput, order_create, order_refund

UTC = datetime.UTC
CALIBRATION_END = datetime.date(1997, 9, 30)  # 39 weeks after 1997-01-01 (FHL 2005)
# Fader, Hardie & Lee (2005), "Counting your customers the easy way", CDNOW 1/10 sample
FHL_2005 = {"r": 0.243, "alpha": 4.414, "a": 0.793, "b": 2.426, "loglik": -9582.4}
# Fader & Hardie (2013), "The Gamma-Gamma model of monetary value", same calibration data
FH_2013 = {"p": 6.25, "q": 3.74, "gamma": 15.44}


# --- CDNOW -------------------------------------------------------------------------------


def _datasets() -> Path:
    spec = importlib.util.find_spec("lifetimes")
    if spec is None or not spec.submodule_search_locations:
        pytest.skip("the lifetimes package (dev dependency, for its CDNOW files) is missing")
    return Path(spec.submodule_search_locations[0]) / "datasets"


@functools.cache
def _raw() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """CDNOW_sample.txt: master customer id, sample customer id (1..2357, the summary's
    ID), date YYYYMMDD, number of CDs, dollar value; whitespace separated."""
    customers, days, amounts = [], [], []
    with open(_datasets() / "CDNOW_sample.txt") as f:
        for line in f:
            _, sample_id, date, _cds, dollars = line.split()
            day = datetime.date(int(date[:4]), int(date[4:6]), int(date[6:]))
            customers.append(int(sample_id))
            days.append(clv_data.day_number(day))
            amounts.append(float(dollars))
    return np.array(customers), np.array(days), np.array(amounts)


@functools.cache
def _summary() -> clv_data.Summary:
    customers, days, amounts = _raw()
    return clv_data.summarise(customers, days, amounts, until=CALIBRATION_END, unit="weeks")


@functools.cache
def _fits() -> tuple[clv.BgNbd, clv.GammaGamma]:
    s = _summary()
    return clv.fit_bgnbd(s.frequency, s.recency, s.T), clv.fit_gamma_gamma(s.frequency, s.monetary)


def _shipped(name: str) -> dict[str, np.ndarray]:
    lines = (_datasets() / name).read_text().split()
    header = lines[0].split(",")
    rows = np.array([[float(v) for v in line.split(",")] for line in lines[1:]])
    return {column: rows[:, n] for n, column in enumerate(header)}


def _relative(ours: float, published: float) -> float:
    return abs(ours - published) / abs(published)


def test_summary_from_raw_transactions_equals_the_shipped_summary():
    s = _summary()
    assert len(s) == 2357 and s.repeat_customers == 946
    # the shipped files round to 2 decimals: ours must round to the same value
    half_cent = 0.005 + 1e-9
    with_money = _shipped("cdnow_customers_summary_with_transactions.csv")
    assert np.array_equal(s.customer, with_money["ID"].astype(int))
    assert np.array_equal(s.frequency, with_money["x"])
    assert np.abs(s.recency - with_money["t_x"]).max() <= half_cent
    assert np.abs(s.T - with_money["T"]).max() <= half_cent
    assert np.abs(s.monetary - with_money["zbar"]).max() <= half_cent
    plain = _shipped("cdnow_customers_summary.csv")
    assert np.array_equal(s.frequency, plain["frequency"])
    assert np.abs(s.recency - plain["recency"]).max() <= half_cent
    assert np.abs(s.T - plain["T"]).max() <= half_cent
    # T counts to the calibration end, not past it: 1997-01-01 -> 1997-09-30 is 272 days
    assert s.T.max() == pytest.approx(272 / 7)


def test_summary_conventions():
    """Same-day purchases are one (amounts summed); the first day's amount is not in
    monetary; purchases after `until` are ignored, as are customers born after it."""
    d = clv_data.day_number(datetime.date(2026, 1, 1))
    s = clv_data.summarise(
        ["a", "a", "a", "a", "b", "c", "a"],
        [d, d, d + 3, d + 10, d + 5, d + 30, d + 20],
        [10.0, 5.0, 7.0, 9.0, 4.0, 1.0, 2.0],
        until=datetime.date(2026, 1, 15),
        unit="days",
    )
    assert list(s.customer) == ["a", "b"]
    assert list(s.frequency) == [2, 0]
    assert list(s.recency) == [10, 0]
    assert list(s.T) == [14, 9]
    assert list(s.monetary) == [8.0, 0.0]  # (7 + 9) / 2: the 15 of the first day left out
    with pytest.raises(ValueError, match="unit"):
        clv_data.summarise(["a"], [d], [1.0], until=datetime.date(2026, 1, 15), unit="months")


def test_bgnbd_reproduces_fader_hardie_lee_2005():
    bgnbd, _ = _fits()
    ours = bgnbd.as_dict()
    for key, published in FHL_2005.items():
        assert _relative(ours[key], published) < 0.01, (key, ours[key], published)
    # the log-likelihood function itself, at the published (rounded) estimates
    s = _summary()
    at_published = clv.bgnbd_loglik(
        tuple(FHL_2005[k] for k in ("r", "alpha", "a", "b")), s.frequency, s.recency, s.T
    )
    assert at_published == pytest.approx(-9582.4, abs=0.05)
    assert bgnbd.loglik >= at_published  # ours is the maximum


def test_gamma_gamma_reproduces_fader_hardie_2013():
    _, gamma_gamma = _fits()
    ours = gamma_gamma.as_dict()
    for key, published in FH_2013.items():
        assert _relative(ours[key], published) < 0.01, (key, ours[key], published)
    s = _summary()
    at_published = clv.gamma_gamma_loglik(
        (FH_2013["p"], FH_2013["q"], FH_2013["gamma"]), s.frequency, s.monetary
    )
    # the published (rounded) estimates sit at the top of our likelihood
    assert at_published <= gamma_gamma.loglik < at_published + 0.05
    assert gamma_gamma.loglik == pytest.approx(-4055.9, abs=0.05)
    # the model's independence assumption holds roughly on CDNOW
    assert abs(clv.spend_frequency_correlation(s.frequency, s.monetary)) < 0.2


def test_analytic_gradients_match_finite_differences():
    """The fits use analytic gradients of the log-likelihoods (over log-parameters)."""
    s = _summary()
    x, t_x, T, m = s.frequency, s.recency, s.T, s.monetary
    weights = np.ones_like(x)
    repeat = (x > 0) & (m > 0)
    models = [
        (clv._BgNbdData(x, t_x, T, weights), np.log([0.3, 5.0, 0.7, 2.0])),
        (clv._BgNbdData(x, t_x, T, weights), np.log([2.0, 40.0, 1.5, 0.4])),
        (clv._GammaGammaData(x[repeat], m[repeat], weights[repeat]), np.log([5.0, 3.0, 12.0])),
    ]
    for data, theta in models:

        def total(th: np.ndarray, data=data) -> float:
            return float(data.terms(np.exp(th), grad=False)[0].sum())

        _, grad = data.terms(np.exp(theta), grad=True)
        numeric = optimize.approx_fprime(theta, total, 1e-7)
        assert np.allclose(grad.sum(axis=1), numeric, rtol=1e-4, atol=1e-3)


def test_fit_is_independent_of_the_time_unit():
    """Days instead of weeks: alpha scales by 7, the rest (and the fit itself) stays."""
    customers, days, amounts = _raw()
    s = clv_data.summarise(customers, days, amounts, until=CALIBRATION_END, unit="days")
    daily = clv.fit_bgnbd(s.frequency, s.recency, s.T)
    weekly, _ = _fits()
    assert daily.r == pytest.approx(weekly.r, rel=1e-3)
    assert daily.alpha == pytest.approx(weekly.alpha * 7, rel=1e-3)
    assert daily.a == pytest.approx(weekly.a, rel=1e-3)
    assert daily.b == pytest.approx(weekly.b, rel=1e-3)


def test_fit_refuses_data_that_cannot_support_it():
    with pytest.raises(ValueError, match="too few customers"):
        clv.fit_bgnbd([1, 0], [3, 0], [10, 10])
    with pytest.raises(ValueError, match="no customer made a repeat purchase"):
        clv.fit_bgnbd([0] * 20, [0] * 20, [10] * 20)
    with pytest.raises(ValueError, match="recency"):
        clv.fit_bgnbd([1] * 20, [11] * 20, [10] * 20)
    with pytest.raises(ValueError, match="too few customers with a repeat purchase"):
        clv.fit_gamma_gamma([1, 2, 0], [5.0, 6.0, 0.0])


# --- predictions -------------------------------------------------------------------------

PUBLISHED = clv.BgNbd(0.243, 4.414, 0.793, 2.426)


def test_fhl_worked_example():
    """Fader & Hardie's worked example for the BG/NBD (CDNOW customer 1): 2 repeat
    purchases, the last at week 30.43, T = 38.86 weeks; at the published estimates the
    model expects 1.226 purchases in the next 39 weeks."""
    expected = clv.expected_purchases(PUBLISHED, 39, [2], [30.43], [38.86])
    assert expected[0] == pytest.approx(1.226, abs=5e-4)


def test_p_alive_behaves():
    x = np.array([0, 1, 2, 5, 5, 5])
    t_x = np.array([0, 10, 20, 30, 30, 30])
    T = np.array([38.86, 38.86, 38.86, 32, 38.86, 80])
    p = clv.p_alive(PUBLISHED, x, t_x, T)
    assert np.all((p >= 0) & (p <= 1))
    assert p[0] == 1.0  # no repeat purchase: a BG/NBD customer cannot have dropped out
    assert p[3] > p[4] > p[5]  # the longer the silence, the less likely alive
    # a very frequent buyer gone quiet long ago: ~0, without overflow
    assert clv.p_alive(PUBLISHED, [300], [10], [1000])[0] < 1e-10


def _by_integration(params: clv.BgNbd, t: float, x: float, t_x: float, T: float) -> float:
    """E[Y(t) | x, t_x, T] from its definition: P(alive) × E[(1 - e^(-λpt)) / p] over the
    posterior λ ~ Gamma(r+x, α+T), p ~ Beta(a, b+x), integrated over p numerically."""
    r, alpha, a, b = params.r + x, params.alpha + T, params.a, params.b + x

    def integrand(p: float) -> float:
        return (1 - (alpha / (alpha + p * t)) ** r) / p * stats.beta.pdf(p, a, b)

    alive = clv.p_alive(params, [x], [t_x], [T])[0]
    return alive * integrate.quad(integrand, 0, 1, limit=200)[0]


@pytest.mark.parametrize(
    "params",
    [
        PUBLISHED,
        clv.BgNbd(0.5, 10, 1.0, 2.0),  # a = 1: 1/(a-1) in eq. 10
        clv.BgNbd(0.5, 10, 1.00003, 2.0),  # next to it
        clv.BgNbd(0.5, 10, 0.3, 0.7),  # a + b = 1: a pole of 2F1 for x = 0
        clv.BgNbd(2.0, 100, 3.0, 0.5),
    ],
)
def test_expected_purchases_equal_their_definition(params):
    cases = [(0, 0, 38.86, 39), (2, 30.43, 38.86, 39), (50, 300, 320, 365), (1, 1, 5, 1000)]
    cases.append((200, 900, 1000, 365))  # frequent buyers: 2F1 parameters grow with x
    x, t_x, T, t = (np.array(c, dtype=float) for c in zip(*cases, strict=True))
    for n in range(len(cases)):
        ours = clv.expected_purchases(params, t[n], x[n : n + 1], t_x[n : n + 1], T[n : n + 1])
        assert ours[0] == pytest.approx(_by_integration(params, t[n], x[n], t_x[n], T[n]), rel=1e-6)


def test_expected_purchases_grow_with_the_horizon():
    s = _summary()
    bgnbd, _ = _fits()
    horizons = [0, 1, 13, 39, 52, 520]
    table = np.array(
        [clv.expected_purchases(bgnbd, h, s.frequency, s.recency, s.T) for h in horizons]
    )
    assert np.all(table[0] == 0)
    assert np.all(np.diff(table, axis=0) >= 0)
    assert np.all(np.isfinite(table))
    # Summed over customers, the next 39 weeks must agree with the model's unconditional
    # forecast for weeks 40-78 (FHL eq. 7: E[X(T+39)] - E[X(T)] per customer)...
    r, alpha, a, b = bgnbd.r, bgnbd.alpha, bgnbd.a, bgnbd.b

    def unconditional(t: np.ndarray) -> np.ndarray:
        z = t / (alpha + t)
        return (a + b - 1) / (a - 1) * (1 - (alpha / (alpha + t)) ** r * hyp2f1(r, b, a + b - 1, z))

    forecast = (unconditional(s.T + 39) - unconditional(s.T)).sum()
    assert table[3].sum() == pytest.approx(forecast, rel=0.02)
    # ... and roughly with what the customers did in weeks 40-78 (purchase days): on this
    # holdout the fitted model forecasts about 12% fewer (1,653 for 1,882)
    customers, days, _ = _raw()
    later = days > clv_data.day_number(CALIBRATION_END)
    holdout = len(set(zip(customers[later], days[later], strict=True)))
    assert holdout == 1882
    assert table[3].sum() == pytest.approx(holdout, rel=0.15)


def test_expected_spend_and_value():
    _, gamma_gamma = _fits()
    s = _summary()
    spend = clv.expected_spend(gamma_gamma, s.frequency, s.monetary)
    g = gamma_gamma
    population = g.p * g.gamma / (g.q - 1)
    assert np.all(spend[s.frequency == 0] == pytest.approx(population))
    repeat = s.frequency > 0
    # a weighted mean of the population mean and the customer's own: between the two
    low = np.minimum(population, s.monetary[repeat])
    high = np.maximum(population, s.monetary[repeat])
    assert np.all((spend[repeat] >= low - 1e-9) & (spend[repeat] <= high + 1e-9))
    assert spend[repeat].mean() == pytest.approx(s.monetary[repeat].mean(), rel=0.02)
    # many purchases: the customer's own mean dominates
    assert clv.expected_spend(g, [1000], [80.0])[0] == pytest.approx(80.0, rel=0.01)
    bgnbd, _ = _fits()
    value = clv.expected_value(bgnbd, g, 52, s.frequency, s.recency, s.T, s.monetary)
    purchases = clv.expected_purchases(bgnbd, 52, s.frequency, s.recency, s.T)
    assert np.allclose(value, purchases * spend)


# --- `siyu clv fit --csv` ------------------------------------------------------------------


def _cdnow_csv(path: Path, encoding: str = "utf-8", header=("customer", "date", "cds", "amount")):
    lines = [",".join(header)]
    for line in (_datasets() / "CDNOW_sample.txt").read_text().splitlines():
        _, sample_id, date, cds, dollars = line.split()
        lines.append(f"{sample_id},{date},{cds},{dollars}")
    path.write_text("\n".join(lines) + "\n", encoding=encoding)
    return path


def _clv(*args: str) -> dict:
    out = io.StringIO()
    call_command("clv", "fit", *args, stdout=out)
    lines = out.getvalue().strip().splitlines()
    assert len(lines) == 1  # one JSON object, nothing else on stdout
    return json.loads(lines[0])


def _assert_published(result: dict) -> None:
    assert list(result)[:3] == ["bgnbd", "gamma_gamma", "customers"]
    assert result["customers"] == 2357 and result["repeat_customers"] == 946
    for key, published in FHL_2005.items():
        assert _relative(result["bgnbd"][key], published) < 0.01
    for key, published in FH_2013.items():
        assert _relative(result["gamma_gamma"][key], published) < 0.01


def test_cli_fits_a_csv(tmp_path):
    path = _cdnow_csv(tmp_path / "cdnow.csv")
    args = ["--csv", str(path), "--customer", "customer", "--date", "date", "--amount", "amount"]
    result = _clv(*args, "--until", "1997-09-30", "--unit", "weeks")
    _assert_published(result)
    assert result["unit"] == "weeks" and result["until"] == "1997-09-30"
    # default unit days, default until the file's last date
    daily = _clv(*args)
    assert daily["unit"] == "days" and daily["until"] == "1998-06-30"
    assert daily["customers"] == 2357


def test_cli_reads_gbk_and_bom_files_with_chinese_headers(tmp_path):
    for encoding in ("gbk", "utf-8-sig"):
        path = _cdnow_csv(tmp_path / f"{encoding}.csv", encoding, ("客户", "日期", "数量", "金额"))
        result = _clv(
            "--csv", str(path), "--customer", "客户", "--date", "日期", "--amount", "金额",
            "--until", "19970930", "--unit", "weeks",
        )  # fmt: skip
        _assert_published(result)


def test_cli_in_a_subprocess(tmp_path):
    path = _cdnow_csv(tmp_path / "cdnow.csv")
    env = {**os.environ, "SIYU_HOME": str(tmp_path / "home")}
    env.pop("DJANGO_SETTINGS_MODULE", None)  # the command's own settings
    env["SIYU_DATABASE_URL"] = f"sqlite:///{tmp_path / 'cli.sqlite3'}"
    done = subprocess.run(
        [sys.executable, "-m", "siyu.cli", "clv", "fit", "--csv", str(path),
         "--customer", "customer", "--date", "date", "--amount", "amount",
         "--until", "1997/09/30", "--unit", "weeks"],
        capture_output=True, text=True, env=env, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    _assert_published(json.loads(done.stdout))  # stdout holds the JSON and nothing else


@pytest.mark.parametrize(
    "content, message",
    [
        ("customer,date,amount\na,2026-01-01,1\nb,abc,2\n", "row 3, column date: not a date: abc"),
        ("customer,date,amount\na,2026-01-01,x9\n", "row 2, column amount: not an amount: x9"),
        ("customer,date,amount\na,2026-01-01,-5\n", "row 2, column amount: must not be negative"),
        ("customer,date,amount\n,2026-01-01,5\n", "row 2, column customer: the customer id"),
        ("customer,date,amount\na,,5\n", "row 2, column date: the date is empty"),
        ("customer,date,amount\na,2026-02-30,5\n", "row 2, column date: not a date"),
        ("customer,day,amount\na,2026-01-01,5\n", "no column 'date' (--date)"),
        ("customer,date,amount\n", "no transactions"),
        ("", "the file is empty"),
    ],
)
def test_cli_names_the_bad_cell(tmp_path, content, message):
    path = tmp_path / "bad.csv"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(CommandError, match=message.replace("(", r"\(").replace(")", r"\)")):
        _clv("--csv", str(path), "--customer", "customer", "--date", "date", "--amount", "amount")


def test_cli_refuses_bad_arguments(tmp_path):
    path = _cdnow_csv(tmp_path / "cdnow.csv")
    with pytest.raises(CommandError, match="--csv needs --date, --amount"):
        _clv("--csv", str(path), "--customer", "customer")
    with pytest.raises(CommandError, match="--until"):
        _clv("--csv", str(path), "--customer", "customer", "--date", "date", "--amount", "amount",
             "--until", "soon")  # fmt: skip
    with pytest.raises(CommandError, match="no such file"):
        _clv("--csv", str(tmp_path / "missing.csv"), "--customer", "c", "--date", "d",
             "--amount", "a")  # fmt: skip
    fit = ("--csv", str(path), "--customer", "customer", "--date", "date", "--amount", "amount")
    with pytest.raises(CommandError, match="too few customers to fit BG/NBD: 0"):
        _clv(*fit, "--until", "1996-12-31")
    with pytest.raises(CommandError, match="no customer made a repeat purchase"):
        _clv(*fit, "--until", "1997-01-01")  # customers born that day have no repeat yet
    with pytest.raises(CommandError):
        _clv("--csv", str(path), "--workspace", "brand")  # one source, not both
    with pytest.raises(CommandError):
        _clv("--customer", "customer")  # no source


# --- a workspace ---------------------------------------------------------------------------

UNTIL = datetime.date(2026, 6, 16)  # the workspace's (Asia/Shanghai) last calibration day
END = datetime.datetime(2026, 6, 16, 16, 0, tzinfo=UTC)  # when that day ends, in UTC
DAY = datetime.timedelta(days=1)


def _buy(contact, fen: int, at: datetime.datetime, n: list[int]):
    n[0] += 1
    order, _ = order_create(
        workspace=contact.workspace,
        actor=Actor.system("test"),
        contact=contact,
        data=OrderInput(external_id=f"clv-{n[0]}", currency="CNY", total_fen=fen, placed_at=at),
    )
    return order


def _score(contact, **values) -> ContactScore:
    return ContactScore.objects.create(
        workspace=contact.workspace, contact=contact, stage="active", tier="low", **values
    )


@pytest.fixture
def shop(cast, make_contact):
    """Buyers simulated from a BG/NBD process (seeded), plus: a contact with no order, one
    whose only orders were refunded in full, one whose two orders fall on one Shanghai day
    but two UTC days, and a buyer in the other workspace. Everyone has a ContactScore row
    (as scores.py would have written it)."""
    rng = np.random.default_rng(7)
    counter = [0]
    buyers = []
    for i in range(30):
        contact = make_contact(name=f"买家{i}")
        rate, drop = rng.gamma(1.0, 1 / 20), rng.beta(1.0, 3.0)
        at = END - datetime.timedelta(days=float(rng.uniform(10, 300)))
        while at < END:
            _buy(contact, int(rng.gamma(4.0, 2500)) + 100, at, counter)
            if rng.random() < drop:
                break
            at += datetime.timedelta(days=float(rng.exponential(1 / rate)))
        buyers.append(contact)
    ghost = make_contact(name="无订单")
    refunded = make_contact(name="全额退款")
    order = _buy(refunded, 5000, END - 40 * DAY, counter)
    order_refund(workspace=cast.workspace, actor=Actor.system("test"), order=order)
    night = make_contact(name="夜猫子")
    # 17:00 UTC on the 10th and 03:00 UTC on the 11th: both on 11 June in Shanghai
    _buy(night, 3000, datetime.datetime(2026, 6, 10, 17, 0, tzinfo=UTC), counter)
    second = _buy(night, 2000, datetime.datetime(2026, 6, 11, 3, 0, tzinfo=UTC), counter)
    order_refund(workspace=cast.workspace, actor=Actor.system("test"), order=second, amount_fen=500)
    _buy(night, 4000, datetime.datetime(2026, 6, 14, 3, 0, tzinfo=UTC), counter)
    _buy(night, 9999, END + DAY, counter)  # after `until`: ignored
    other = make_contact(name="别家", workspace=cast.outsider_workspace)
    _buy(other, 1000, END - 5 * DAY, counter)
    for contact in [*buyers, ghost, refunded, night, other]:
        _score(contact)
    return {"buyers": buyers, "ghost": ghost, "refunded": refunded, "night": night}


def test_workspace_summary_in_sql(cast, shop):
    s = clv_data.workspace_summary(cast.workspace.pk, UNTIL)
    rows = {int(c): n for n, c in enumerate(s.customer)}
    assert shop["ghost"].pk not in rows and shop["refunded"].pk not in rows
    assert set(rows) == {c.pk for c in shop["buyers"]} | {shop["night"].pk}
    n = rows[shop["night"].pk]
    # first day 11 June (3000 + 2000 - 500 refunded), repeat on 14 June (4000)
    assert (s.frequency[n], s.recency[n], s.T[n], s.monetary[n]) == (1, 3, 5, 4000)
    # the same from the raw orders, summarised by the CSV path's numpy code
    orders = Order.objects.filter(workspace=cast.workspace, contact__isnull=False).exclude(
        status="refunded"
    )
    tz = datetime.timezone(datetime.timedelta(hours=8))  # Shanghai has no DST
    raw = [
        (o.contact_id, clv_data.day_number(o.placed_at.astimezone(tz).date()),
         o.total_fen - o.refunded_fen)
        for o in orders
    ]  # fmt: skip
    expected = clv_data.summarise(*zip(*raw, strict=True), until=UNTIL)
    assert np.array_equal(expected.customer, s.customer)
    for column in ("frequency", "recency", "T", "monetary"):
        assert np.allclose(getattr(expected, column), getattr(s, column)), column
    # a date-time means its day in the workspace's zone
    later = clv_data.workspace_summary(cast.workspace.pk, END + datetime.timedelta(hours=1))
    assert later.until == UNTIL + DAY


def test_workspace_fit_writes_scores(cast, shop):
    fit = clv_fit_workspace(cast.workspace, actor=Actor.system("test"), until=UNTIL)
    assert fit.error == ""
    assert fit.customers == 31 and fit.until == END
    assert set(fit.params["bgnbd"]) == {"r", "alpha", "a", "b", "loglik"}
    assert set(fit.params["gamma_gamma"]) == {"p", "q", "gamma", "loglik"}
    assert fit.params["unit"] == "days" and fit.params["scores_written"] == 31
    scores = {s.contact_id: s for s in ContactScore.objects.filter(workspace=cast.workspace)}
    for contact in [*shop["buyers"], shop["night"]]:
        score = scores[contact.pk]
        assert 0 <= score.p_alive <= 1
        assert score.expected_purchases_90d >= 0
        assert isinstance(score.expected_value_12m_fen, int) and score.expected_value_12m_fen >= 0
        assert score.clv_at is not None
    for contact in (shop["ghost"], shop["refunded"]):
        score = scores[contact.pk]
        assert (score.p_alive, score.expected_purchases_90d, score.clv_at) == (None, None, None)
    other = ContactScore.objects.get(workspace=cast.outsider_workspace)
    assert other.p_alive is None and other.clv_at is None
    # the values are the model's: recompute one contact's from the stored fit
    night = scores[shop["night"].pk]
    bgnbd = clv.BgNbd(**fit.params["bgnbd"])
    assert night.p_alive == pytest.approx(clv.p_alive(bgnbd, [1], [3], [5])[0])
    assert night.expected_purchases_90d == pytest.approx(
        clv.expected_purchases(bgnbd, 90, [1], [3], [5])[0]
    )
    assert AuditLog.objects.filter(workspace=cast.workspace, action="clv.fit").count() == 1
    # a buyer whose orders are all refunded afterwards loses the prediction on the next fit
    for order in Order.objects.filter(contact=shop["night"]).exclude(status="refunded"):
        order_refund(workspace=cast.workspace, actor=Actor.system("test"), order=order)
    clv_fit_workspace(cast.workspace, actor=Actor.system("test"), until=UNTIL)
    night = ContactScore.objects.get(contact=shop["night"])
    assert (night.p_alive, night.expected_value_12m_fen, night.clv_at) == (None, None, None)


def test_workspace_fit_with_too_little_data_changes_no_score(cast, make_contact):
    counter = [0]
    contacts = [make_contact(name=f"客户{i}") for i in range(3)]
    for contact in contacts:
        _buy(contact, 1000, END - 20 * DAY, counter)
        _buy(contact, 1000, END - 10 * DAY, counter)
        _score(contact, p_alive=0.5, expected_value_12m_fen=100)
    fit = clv_fit_workspace(cast.workspace, actor=Actor.system("test"), until=UNTIL)
    assert "too few customers" in fit.error and fit.customers == 3
    assert ClvFit.objects.get(pk=fit.pk).params["bgnbd"] is None
    assert set(ContactScore.objects.values_list("p_alive", "expected_value_12m_fen")) == {
        (0.5, 100)
    }
    with pytest.raises(CommandError, match="too few customers"):
        _clv("--workspace", cast.workspace.slug, "--until", "2026-06-16")


def test_workspace_fit_without_enough_repeat_buyers_for_spend(cast, make_contact):
    """BG/NBD fits (12 buyers, 3 of them repeat) but Gamma-Gamma cannot (fewer than 5
    repeat buyers): P(alive) and purchases are written, the value stays null."""
    counter = [0]
    contacts = [make_contact(name=f"客户{i}") for i in range(12)]
    for i, contact in enumerate(contacts):
        _buy(contact, 1000, END - (30 + 10 * i) * DAY, counter)
        if i < 3:
            _buy(contact, 2000, END - (5 + i) * DAY, counter)
        _score(contact)
    fit = clv_fit_workspace(cast.workspace, actor=Actor.system("test"), until=UNTIL)
    assert fit.error == "" and fit.params["gamma_gamma"] is None
    assert "too few customers with a repeat purchase" in fit.params["gamma_gamma_error"]
    scores = ContactScore.objects.filter(workspace=cast.workspace)
    assert all(0 <= s.p_alive <= 1 and s.expected_value_12m_fen is None for s in scores)


def test_cli_fits_a_workspace(cast, shop):
    result = _clv("--workspace", cast.workspace.slug, "--until", "2026-06-16")
    assert list(result)[:3] == ["bgnbd", "gamma_gamma", "customers"]
    assert result["customers"] == 31 and result["until_day"] == "2026-06-16"
    fit = ClvFit.objects.get(pk=result["fit_id"])
    assert fit.params["bgnbd"] == result["bgnbd"]
    with pytest.raises(CommandError, match="no workspace"):
        _clv("--workspace", "nope")
    with pytest.raises(CommandError, match="--unit applies to --csv only"):
        _clv("--workspace", cast.workspace.slug, "--unit", "weeks")
