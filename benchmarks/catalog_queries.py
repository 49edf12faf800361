"""Catalog queries: p50/p95 latency of the contract's query patterns through the API, against the same SQL alone.

Target (1,000,000 products on PostgreSQL, one client, this 2-core machine): p95 <= 50 ms for (a) polling,
(b) operator listing, (c) productType attribute with $count, (e) Products(<id>); p95 <= 250 ms for (d) contains(Name).
16 concurrent clients are measured too (no target: it shows how latency degrades when the 2 cores are shared).

Set-up: a harness PostgreSQL 15 cluster, `load_sample_catalog` (COPY path), ANALYZE, then the real API server
(harness `run_api`) on that database with one Basic-auth user of role Download.

Measurement: every request is generated up front from a seeded RNG (random poll points, windows, substrings, ids),
so the API and the baseline run the very same requests. HTTP clients (`requests.Session`, keep-alive, one per
client thread) run in a separate *process*: run_api serves from a thread of this process, and client threads here
would compete with the server for the GIL, charging client-side work to the server. Each response is checked (200,
expected shape) in the client process and the time is taken up to the last body byte, before JSON decoding.

Baseline: the select the API compiles for the same query options (`parse_query_options` + `products_select`, or
the `Products(<id>)` select), executed through a plain SQLAlchemy Session exactly as the handler's worker-thread
code does (ORM objects, selectinload of checksums, the count), with no HTTP, auth or JSON. API/SQL p50 is then the
HTTP + auth + parsing + serialisation overhead (at 16 clients it also includes queueing on the API's small worker
pool, while the baseline gets one connection per thread). EXPLAIN (ANALYZE, BUFFERS) of every statement of one
representative request per query is printed, so a slow query comes with its plan.

`--reuse-pgdata DIR` keeps the cluster (and the loaded catalog) in DIR between runs: the harness's `run_postgres`
always deletes its cluster, so this script runs the same initdb/postgres steps on a directory it keeps. A marker
file records the count loaded; a directory with another count or an unfinished load is refused, not reloaded.
Run: `.venv/bin/python benchmarks/catalog_queries.py [--count 1000000] [--requests 50] [--clients 16]
[--per-client 20] [--reuse-pgdata /var/tmp/auxip-bench-1m]`.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import contextlib
import dataclasses
import itertools
import json
import multiprocessing
import os
import pwd
import random
import re
import statistics
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import requests
from sqlalchemy import Engine, event, select, text
from sqlalchemy.orm import Session

from auxip.api.formats import odata_timestamp
from auxip.auth import Role
from auxip.catalog.migrate import make_engine, upgrade
from auxip.catalog.models import Product
from auxip.catalog.views import load_product_views
from auxip.odata import PRODUCTS, parse_query_options, products_select
from auxip_testing.api_server import default_config, run_api
from auxip_testing.postgres import (
    DB_NAME,
    DB_USER,
    OS_USER,
    PostgresServer,
    _can_query,
    _create_database,
    _fast_shutdown,
    _initdb,
    _postgres_process,
    run_postgres,
)
from auxip_testing.process import free_port, running, scratch_dir
from auxip_testing.sample_products import EPOCH

sys.path.insert(0, str(Path(__file__).resolve().parent))
from catalog_load import load_sample_catalog  # benchmarks/ is not a package: on sys.path above

USERNAME, PASSWORD = "bench-poller", "bench-password-1"
MARKER = "auxip-catalog.json"
# The three name prefixes an operator ORs together in (b): two orbit families of one unit and the wind product.
LISTING_PREFIXES = ("S1A_OPER_AUX_POEORB", "S1A_OPER_AUX_RESORB", "S1__AUX_WND")
WINDOW = timedelta(days=3)


# --- the cluster -------------------------------------------------------------------------------------------------


@contextlib.contextmanager
def persistent_postgres(root: Path) -> Iterator[tuple[PostgresServer, int | None]]:
    """A cluster in `root` that survives the run: (server, products already loaded there or None if fresh).

    Same initdb flags and settings as the harness (run_postgres), but the directory is never deleted.
    """
    root = root.resolve()
    root.mkdir(parents=True, exist_ok=True)
    account = pwd.getpwnam(OS_USER)
    os.chown(root, account.pw_uid, account.pw_gid)  # initdb runs as postgres and must create root/data
    marker = root / MARKER
    fresh = not (root / "data").exists()
    if not fresh and not marker.exists():
        raise SystemExit(f"{root}/data exists but holds no finished load ({MARKER} missing): delete {root}")
    if fresh:
        _initdb(root / "data", root / "initdb.log")
    port = free_port()
    server = PostgresServer(host="127.0.0.1", port=port, user=DB_USER, dbname=DB_NAME, socket_dir=root)
    process = _postgres_process(root, port)
    with running(process, lambda: _can_query(server, "postgres"), 60):
        try:
            if fresh:
                _create_database(server)
            loaded = None if fresh else int(json.loads(marker.read_text())["count"])
            yield server, loaded
        finally:
            # A clean (checkpointed) shutdown: the cluster runs with fsync off, so only that makes the files whole.
            _fast_shutdown(process)


@contextlib.contextmanager
def catalog_database(count: int, reuse: Path | None) -> Iterator[str]:
    """The SQLAlchemy URL of a migrated, loaded and analysed catalog of `count` sample products."""
    if reuse is None:
        with run_postgres() as server:
            _load(server.sqlalchemy_url, count)
            yield server.sqlalchemy_url
        return
    with persistent_postgres(reuse) as (server, loaded):
        if loaded is None:
            _load(server.sqlalchemy_url, count)
            (reuse / MARKER).write_text(json.dumps({"count": count, "seed": 1}))
        elif loaded != count:
            raise SystemExit(f"{reuse} holds {loaded:,} products, not {count:,}: use another directory")
        else:
            print(f"reusing the catalog of {loaded:,} products in {reuse}")
        yield server.sqlalchemy_url


def _load(url: str, count: int) -> None:
    upgrade(url)
    engine = make_engine(url)
    try:
        print(f"loading {count:,} sample products (COPY path)")

        def progress(loaded: int, elapsed: float) -> None:
            print(f"  {loaded:>9,} products  {elapsed:7.1f} s  {loaded / elapsed:8,.0f} products/s", flush=True)

        elapsed = load_sample_catalog(engine, count, progress=progress)
        started = time.perf_counter()
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(text("VACUUM ANALYZE"))
        # VACUUM too: it sets the visibility map, so index-only scans (the attribute indexes) skip the heap as they
        # would on a catalog that has been live for a while; ANALYZE gives the planner the 1M-row statistics.
        print(
            f"loaded in {elapsed:.1f} s ({count / elapsed:,.0f} products/s); VACUUM ANALYZE "
            f"{time.perf_counter() - started:.1f} s"
        )
    finally:
        engine.dispose()


# --- the requests ------------------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Case:
    """One request, picklable for the client process: path under the service root, query, and what to check."""

    path: str
    params: dict[str, str]
    check: dict[str, Any]


@dataclasses.dataclass(frozen=True)
class Query:
    key: str
    label: str
    target_ms: float
    make: Callable[[random.Random], Case]


@dataclasses.dataclass(frozen=True)
class Facts:
    """What the generated requests need to know about the loaded catalog."""

    tail_dates: list[datetime]  # the last 1001 PublicationDates, newest first
    head_dates: list[datetime]  # PublicationDates of the oldest 10% (at most 100k), oldest first
    content_start: datetime
    content_end: datetime
    created_days: int
    wnd_count: int
    ids: list[uuid.UUID]


def gather_facts(engine: Engine, count: int) -> Facts:
    with engine.connect() as conn:
        tail = conn.scalars(text("SELECT publication_date FROM product ORDER BY publication_date DESC LIMIT 1001"))
        head = conn.scalars(
            text("SELECT publication_date FROM product ORDER BY publication_date LIMIT :n"),
            {"n": min(count // 10, 100_000)},
        )
        start, end = conn.execute(text("SELECT min(content_date_start), max(content_date_start) FROM product")).one()
        wnd = conn.scalar(
            text(
                "SELECT count(*) FROM product_attribute a JOIN product p ON p.id = a.product_id WHERE a.name ="
                " 'productType' AND a.value_string = 'AUX_WND' AND p.evicted_at IS NULL"
            )
        )
        ids = conn.scalars(text("SELECT id FROM product TABLESAMPLE SYSTEM (1) REPEATABLE (1) LIMIT 5000"))
        return Facts(
            tail_dates=list(tail),
            head_dates=list(head),
            content_start=start,
            content_end=end,
            created_days=max(1, count * 120 // 86400),
            wnd_count=int(wnd or 0),
            ids=list(ids),
        )


def build_queries(facts: Facts) -> list[Query]:
    def poll_recent(rng: random.Random) -> Case:
        # A poller that is a little behind: 300..1000 products were published after its last date.
        behind = rng.randint(300, min(1000, len(facts.tail_dates) - 1))
        after = odata_timestamp(facts.tail_dates[behind])
        return _poll(after, expected=behind)

    def poll_full(rng: random.Random) -> Case:
        # A poller far behind (or starting from the start): a full page of 1000 comes back.
        after = odata_timestamp(rng.choice(facts.head_dates[:-1000]))
        return _poll(after, expected=1000)

    def listing(rng: random.Random) -> Case:
        span = (facts.content_end - facts.content_start).total_seconds() - WINDOW.total_seconds()
        low = facts.content_start + timedelta(seconds=rng.uniform(0, max(span, 0)))
        low = low.replace(minute=0, second=0, microsecond=0)  # operators type round dates
        high = low + WINDOW
        names = " or ".join(f"startswith(Name,'{prefix}')" for prefix in LISTING_PREFIXES)
        condition = (
            f"({names}) and ContentDate/Start ge {odata_timestamp(low)} and ContentDate/End le {odata_timestamp(high)}"
        )
        params = {"$filter": condition, "$orderby": "PublicationDate desc", "$top": "100"}
        check = {"kind": "listing", "prefixes": LISTING_PREFIXES, "low": low.isoformat(), "high": high.isoformat()}
        return Case("Products", params, check)

    def product_type(_rng: random.Random) -> Case:
        condition = (
            "Attributes/OData.CSC.StringAttribute/any(att:att/Name eq 'productType' and "
            "att/OData.CSC.StringAttribute/Value eq 'AUX_WND')"
        )
        params = {"$filter": condition, "$count": "true", "$top": "100"}
        return Case("Products", params, {"kind": "count", "count": facts.wnd_count, "rows": min(100, facts.wnd_count)})

    def contains(rng: random.Random) -> Case:
        # "which POEORB files were generated on day D": ~150 matches at 1M, found by scanning names.
        day = EPOCH + timedelta(days=rng.randrange(facts.created_days))
        needle = f"POEORB_OPOD_{day:%Y%m%d}"
        params = {"$filter": f"contains(Name,'{needle}')", "$top": "100"}
        return Case("Products", params, {"kind": "contains", "needle": needle})

    def by_id(rng: random.Random) -> Case:
        product_id = rng.choice(facts.ids)
        return Case(f"Products({product_id})", {}, {"kind": "entity", "id": str(product_id)})

    return [
        Query("a1", "(a) poll, 300-1000 rows follow", 50, poll_recent),
        Query("a2", "(a) poll, full page of 1000", 50, poll_full),
        Query("b", "(b) listing: 3 startswith + window", 50, listing),
        Query("c", "(c) productType eq, $count", 50, product_type),
        Query("d", "(d) contains(Name)", 250, contains),
        Query("e", "(e) Products(<id>)", 50, by_id),
    ]


def _poll(after: str, expected: int) -> Case:
    params = {"$filter": f"PublicationDate gt {after}", "$orderby": "PublicationDate asc", "$top": "1000"}
    return Case("Products", params, {"kind": "poll", "after": after, "rows": expected})


def verify(check: dict[str, Any], body: dict[str, Any]) -> int:
    """Raise AssertionError unless `body` has the shape `check` describes; return the number of products in it."""
    kind = check["kind"]
    if kind == "entity":
        assert body["Id"] == check["id"], f"asked for {check['id']}, got {body.get('Id')}"
        return 1
    rows = body["value"]
    dates = [datetime.fromisoformat(row["PublicationDate"]) for row in rows]
    if kind == "poll":
        assert len(rows) == check["rows"], f"expected {check['rows']} rows, got {len(rows)}"
        assert all(d > datetime.fromisoformat(check["after"]) for d in dates[:1]), "first row not after the poll date"
        assert all(a < b for a, b in itertools.pairwise(dates)), "not in ascending PublicationDate"
    elif kind == "listing":
        low, high = datetime.fromisoformat(check["low"]), datetime.fromisoformat(check["high"])
        assert len(rows) <= 100
        assert all(a > b for a, b in itertools.pairwise(dates)), "not in descending PublicationDate"
        for row in rows:
            assert row["Name"].startswith(tuple(check["prefixes"])), row["Name"]
            start = datetime.fromisoformat(row["ContentDate"]["Start"])
            end = datetime.fromisoformat(row["ContentDate"]["End"])
            assert low <= start, f"{row['Name']} starts before the window"
            assert end <= high, f"{row['Name']} ends after the window"
    elif kind == "count":
        assert body.get("@odata.count") == check["count"], f"@odata.count {body.get('@odata.count')}"
        assert len(rows) == check["rows"], f"expected {check['rows']} rows, got {len(rows)}"
    elif kind == "contains":
        assert len(rows) <= 100
        assert all(check["needle"] in row["Name"] for row in rows), "a name without the substring"
    return len(rows)


# --- the HTTP clients (run in a separate process) ----------------------------------------------------------------


def drive(root: str, auth: tuple[str, str], plan: list[list[Case]]) -> tuple[list[float], list[int], float]:
    """One thread (own Session) per inner list, started together; (latencies s, rows per response, wall s)."""
    latencies: list[float] = []
    rows: list[int] = []
    lock = threading.Lock()
    barrier = threading.Barrier(len(plan) + 1)
    errors: list[BaseException] = []

    def client(cases: list[Case]) -> None:
        mine: list[tuple[float, int]] = []
        with requests.Session() as session:
            session.auth = auth
            barrier.wait()
            try:
                for case in cases:
                    started = time.perf_counter()
                    response = session.get(f"{root}/{case.path}", params=case.params, timeout=120)
                    elapsed = time.perf_counter() - started  # requests has read the whole body by now
                    if response.status_code != 200:
                        raise AssertionError(f"{case.path} {case.params}: {response.status_code} {response.text}")
                    try:
                        mine.append((elapsed, verify(case.check, response.json())))
                    except AssertionError as exc:
                        raise AssertionError(f"{case.path} {case.params}: {exc}") from exc
            except BaseException as exc:  # reported by the parent; the other clients finish their work
                errors.append(exc)
        with lock:
            latencies.extend(m[0] for m in mine)
            rows.extend(m[1] for m in mine)

    threads = [threading.Thread(target=client, args=(cases,)) for cases in plan]
    for thread in threads:
        thread.start()
    barrier.wait()
    started = time.perf_counter()
    for thread in threads:
        thread.join()
    wall = time.perf_counter() - started
    if errors:
        raise errors[0]
    return latencies, rows, wall


# --- the baseline: the same SQL through a plain Session ----------------------------------------------------------


def sql_runner(engine: Engine, case: Case) -> Callable[[], None]:
    """What the handler's worker thread does for `case`, without HTTP, auth or JSON."""
    if case.check["kind"] == "entity":
        table = Product.__table__
        statement = select(table).where(table.c.id == uuid.UUID(case.check["id"]), table.c.evicted_at.is_(None))

        def entity() -> None:
            with Session(engine, expire_on_commit=False) as session:
                if not load_product_views(session, statement):
                    raise AssertionError(f"no product {case.check['id']}")

        return entity
    page, count = products_select(parse_query_options(case.params, PRODUCTS))

    def listing() -> None:
        with Session(engine, expire_on_commit=False) as session:
            load_product_views(session, page, attributes="$expand" in case.params)
            if count is not None:
                session.scalar(count)

    return listing


def sql_drive(engine: Engine, plan: list[list[Case]]) -> tuple[list[float], float]:
    runners = [[sql_runner(engine, case) for case in cases] for cases in plan]  # compiled outside the timing
    latencies: list[float] = []
    lock = threading.Lock()
    barrier = threading.Barrier(len(plan) + 1)

    def client(work: list[Callable[[], None]]) -> None:
        mine = []
        barrier.wait()
        for run in work:
            started = time.perf_counter()
            run()
            mine.append(time.perf_counter() - started)
        with lock:
            latencies.extend(mine)

    threads = [threading.Thread(target=client, args=(work,)) for work in runners]
    for thread in threads:
        thread.start()
    barrier.wait()
    started = time.perf_counter()
    for thread in threads:
        thread.join()
    return latencies, time.perf_counter() - started


# --- EXPLAIN -----------------------------------------------------------------------------------------------------


def explain(engine: Engine, case: Case) -> list[str]:
    """EXPLAIN (ANALYZE, BUFFERS) of every statement `case` issues, with the exact SQL text and bound parameters."""
    captured: list[tuple[str, Any]] = []

    def capture(_conn: Any, _cursor: Any, statement: str, parameters: Any, _context: Any, _many: bool) -> None:
        captured.append((statement, parameters))

    event.listen(engine, "before_cursor_execute", capture)
    try:
        sql_runner(engine, case)()
    finally:
        event.remove(engine, "before_cursor_execute", capture)
    lines = []
    with engine.connect() as conn:
        for statement, parameters in captured:
            plan = conn.exec_driver_sql(f"EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) {statement}", parameters).scalar()
            document = (json.loads(plan) if isinstance(plan, str) else plan)[0]
            found = re.search(r"\bFROM\s+(\w+)", statement)
            source = found.group(1) if found else "?"
            what = "count" if statement.lstrip().upper().startswith("SELECT COUNT") else f"rows of {source}"
            root = document["Plan"]
            lines.append(
                f"    {what}: execution {document['Execution Time']:.2f} ms, planning {document['Planning Time']:.2f}"
                f" ms, buffers hit {root.get('Shared Hit Blocks', 0)} read {root.get('Shared Read Blocks', 0)}"
            )
            lines += _plan_lines(root, 6)
    return lines


def _plan_lines(node: dict[str, Any], indent: int) -> list[str]:
    label = node["Node Type"]
    if "Index Name" in node:
        label += f" using {node['Index Name']}"
    elif "Relation Name" in node:
        label += f" on {node['Relation Name']}"
    detail = (
        f"rows={node.get('Actual Rows')} loops={node.get('Actual Loops')} {node.get('Actual Total Time', 0):.2f} ms"
    )
    removed = node.get("Rows Removed by Filter") or node.get("Rows Removed by Index Recheck")
    if removed:
        detail += f", removed by filter {removed:,}"
    if "Heap Fetches" in node:
        detail += f", heap fetches {node['Heap Fetches']}"
    lines = [f"{' ' * indent}{label}  ({detail})"]
    for key in ("Index Cond", "Filter", "Sort Key"):
        if key in node:
            value = node[key] if isinstance(node[key], str) else ", ".join(node[key])
            lines.append(f"{' ' * (indent + 4)}{key}: {value[:150]}")
    for child in node.get("Plans", []):
        lines += _plan_lines(child, indent + 2)
    return lines


# --- the run -----------------------------------------------------------------------------------------------------


def _ms(values: list[float], quantile: float) -> float:
    ordered = sorted(values)
    return 1000 * ordered[min(len(ordered) - 1, round(quantile * (len(ordered) - 1)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--count", type=int, default=1_000_000, help="products in the catalog")
    parser.add_argument("--requests", type=int, default=50, help="requests per query at one client")
    parser.add_argument("--clients", type=int, default=16, help="concurrent clients in the second mode")
    parser.add_argument("--per-client", type=int, default=20, help="requests per client per query, concurrent mode")
    parser.add_argument("--reuse-pgdata", type=Path, help="keep the cluster and its loaded catalog in this directory")
    args = parser.parse_args()
    if args.count < 20_000:
        raise SystemExit("--count must be at least 20,000 (the full-page poll needs 1000 rows after 10% of them)")

    started = time.perf_counter()
    context = multiprocessing.get_context("spawn")
    with (
        catalog_database(args.count, args.reuse_pgdata) as url,
        scratch_dir("auxip-bench-queries-") as work,
        run_api(default_config(work, catalog={"url": url}), notify_interval=None) as server,
        concurrent.futures.ProcessPoolExecutor(1, mp_context=context) as clients,
    ):
        with contextlib.suppress(Exception):
            server.store.remove_user(USERNAME)  # a reused database keeps the previous run's user
        server.add_user(USERNAME, PASSWORD, Role.DOWNLOAD)
        # One connection per baseline thread: the baseline is the database's own latency, without pool waits.
        engine = make_engine(url, pool_size=args.clients, max_overflow=0)
        try:
            facts = gather_facts(engine, args.count)
            queries = build_queries(facts)
            print(f"catalog ready after {time.perf_counter() - started:.1f} s; AUX_WND products: {facts.wnd_count:,}")
            results = []
            for query in queries:
                results += measure(query, engine, clients, server.service_root, args)
            print_table(results)
            print("\nEXPLAIN (ANALYZE, BUFFERS) of one request of each query (the exact SQL the API runs):")
            for query in queries:
                case = query.make(random.Random(f"explain-{query.key}"))  # noqa: S311 - reproducible requests
                print(f"  {query.label}: {case.path} {case.params}")
                for line in explain(engine, case):
                    print(line)
        finally:
            engine.dispose()
    print(f"total {time.perf_counter() - started:.1f} s")


def measure(
    query: Query, engine: Engine, clients: concurrent.futures.Executor, root: str, args: argparse.Namespace
) -> list[dict[str, Any]]:
    rng = random.Random(f"bench-{query.key}")  # noqa: S311 - the same requests every run
    auth = (USERNAME, PASSWORD)
    # Warm-up: code paths, connection pools, the Basic-auth cache and the pages this query touches.
    warm = [[query.make(rng) for _ in range(5)]]
    clients.submit(drive, root, auth, warm).result()
    sql_drive(engine, warm)

    rows = []
    for mode, plan in (
        ("1 client", [[query.make(rng) for _ in range(args.requests)]]),
        (f"{args.clients} clients", [[query.make(rng) for _ in range(args.per_client)] for _ in range(args.clients)]),
    ):
        api, returned, api_wall = clients.submit(drive, root, auth, plan).result()
        sql, sql_wall = sql_drive(engine, plan)
        row = {
            "query": query,
            "mode": mode,
            "n": len(api),
            "p50": _ms(api, 0.5),
            "p95": _ms(api, 0.95),
            "max": max(api) * 1000,
            "sql_p50": _ms(sql, 0.5),
            "sql_p95": _ms(sql, 0.95),
            "rows": statistics.mean(returned),
            "rps": len(api) / api_wall,
            "sql_rps": len(sql) / sql_wall,
            "single": mode == "1 client",
        }
        print(
            f"  {query.label:<38} {mode:<10} p50 {row['p50']:8.1f} ms  p95 {row['p95']:8.1f} ms"
            f"  (SQL p50 {row['sql_p50']:7.1f} ms)",
            flush=True,
        )
        rows.append(row)
    return rows


def print_table(results: list[dict[str, Any]]) -> None:
    header = (
        f"{'query':<38} {'mode':<10} {'n':>4} {'p50 ms':>8} {'p95 ms':>8} {'max ms':>8} {'SQL p50':>8} {'SQL p95':>8}"
        f" {'API/SQL':>7} {'rows':>6} {'req/s':>7} {'SQL r/s':>7} {'target':>9}  verdict"
    )
    print("\n" + header)
    print("-" * len(header))
    for r in results:
        query = r["query"]
        target = f"p95<={query.target_ms:.0f}" if r["single"] else "-"
        verdict = ("PASS" if r["p95"] <= query.target_ms else "FAIL") if r["single"] else "(info)"
        print(
            f"{query.label:<38} {r['mode']:<10} {r['n']:>4} {r['p50']:>8.1f} {r['p95']:>8.1f} {r['max']:>8.1f}"
            f" {r['sql_p50']:>8.1f} {r['sql_p95']:>8.1f} {r['p50'] / r['sql_p50']:>7.2f} {r['rows']:>6.0f}"
            f" {r['rps']:>7.1f} {r['sql_rps']:>7.1f} {target:>9}  {verdict}"
        )


if __name__ == "__main__":
    main()
