"""Catalog load: `bulk_load` into PostgreSQL, COPY fast path against the executemany path, then table sizes.

Target: COPY path >= 10x the executemany path (products/s), and a 1,000,000-product sample catalog (the API query
benchmark's data set) loaded within ~10 minutes.

Both paths load the same sample_records into a fresh, migrated database of one throw-away cluster (harness
`run_postgres`), so the comparison is on equal (empty) tables; the big load then goes into the `auxip` database,
with progress lines every 100k products. Rates include generating the records in Python, as a real load would.
Run: `.venv/bin/python benchmarks/catalog_load.py [--count 1000000] [--compare-count 20000]`.

`load_sample_catalog(engine, count)` is importable (put `benchmarks/` on sys.path) for benchmarks that need a
populated catalog.
"""

from __future__ import annotations

import argparse
import itertools
import time
from collections.abc import Callable

from sqlalchemy import Engine, text

from auxip.catalog.bulk import bulk_load
from auxip.catalog.migrate import make_engine, upgrade
from auxip.catalog.writers import LoadMethod
from auxip_testing.postgres import PostgresServer, run_postgres
from auxip_testing.sample_products import sample_records

PROGRESS_EVERY = 100_000
# Per-transaction overhead (clock lock, name check) is amortised over the batch; the clock lock is held for the
# batch's duration (~0.2 s at this size), short enough for live publishers to interleave.
BATCH_SIZE = 5000


def load_sample_catalog(
    engine: Engine,
    count: int,
    *,
    seed: int = 1,
    batch_size: int = BATCH_SIZE,
    method: LoadMethod = "auto",
    progress: Callable[[int, float], None] | None = None,
) -> float:
    """Load `count` sample products (deterministic for `seed`) into a migrated catalog; return the seconds taken.

    `progress(loaded, elapsed_seconds)` is called every PROGRESS_EVERY products and at the end.
    """
    records = sample_records(count, seed=seed)
    loaded = 0
    started = time.perf_counter()
    while loaded < count:
        chunk = min(PROGRESS_EVERY, count - loaded)
        result = bulk_load(engine, itertools.islice(records, chunk), batch_size=batch_size, method=method)
        loaded += result.inserted + result.skipped
        if progress is not None:
            progress(loaded, time.perf_counter() - started)
    return time.perf_counter() - started


def _fresh_database(server: PostgresServer, name: str) -> str:
    url = server.create_database(name).sqlalchemy_url
    upgrade(url)
    return url


def _timed_load(url: str, count: int, method: LoadMethod) -> float:
    engine = make_engine(url)
    try:
        # The executemany path keeps the loader's historical batch size, the one it was measured with.
        batch_size = BATCH_SIZE if method == "auto" else 1000
        return load_sample_catalog(engine, count, batch_size=batch_size, method=method)
    finally:
        engine.dispose()


def _print_progress(loaded: int, elapsed: float) -> None:
    print(f"  {loaded:>9,} products  {elapsed:7.1f} s  {loaded / elapsed:8,.0f} products/s", flush=True)


def _print_sizes(engine: Engine) -> None:
    with engine.connect() as conn:
        conn.execute(text("ANALYZE"))
        tables = conn.execute(
            text(
                "SELECT c.relname, c.reltuples::bigint, pg_table_size(c.oid), pg_indexes_size(c.oid),"
                " pg_total_relation_size(c.oid) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
                " WHERE n.nspname = 'public' AND c.relkind = 'r' ORDER BY pg_total_relation_size(c.oid) DESC"
            )
        ).all()
        indexes = conn.execute(
            text(
                "SELECT t.relname, i.relname, pg_relation_size(i.oid) FROM pg_index x"
                " JOIN pg_class i ON i.oid = x.indexrelid JOIN pg_class t ON t.oid = x.indrelid"
                " JOIN pg_namespace n ON n.oid = t.relnamespace WHERE n.nspname = 'public'"
                " ORDER BY pg_relation_size(i.oid) DESC"
            )
        ).all()
    mib = 1 << 20
    print(f"{'table':<22} {'rows':>12} {'heap MiB':>9} {'index MiB':>10} {'total MiB':>10}")
    for name, rows, heap, index, total in tables:
        print(f"{name:<22} {rows:>12,} {heap / mib:>9.1f} {index / mib:>10.1f} {total / mib:>10.1f}")
    print(f"{'index':<34} {'of table':<20} {'MiB':>8}")
    for table, index_name, size in indexes:
        print(f"{index_name:<34} {table:<20} {size / mib:>8.1f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--count", type=int, default=1_000_000, help="products in the big load")
    parser.add_argument("--compare-count", type=int, default=20_000, help="products per path in the comparison")
    args = parser.parse_args()

    with run_postgres() as server:
        print(f"comparison: {args.compare_count:,} sample products into an empty catalog, each path")
        slow = _timed_load(_fresh_database(server, "compare_executemany"), args.compare_count, "executemany")
        fast = _timed_load(_fresh_database(server, "compare_copy"), args.compare_count, "auto")
        slow_rate, fast_rate = args.compare_count / slow, args.compare_count / fast
        print(f"  executemany: {slow:6.1f} s  {slow_rate:8,.0f} products/s")
        print(f"  COPY:        {fast:6.1f} s  {fast_rate:8,.0f} products/s")
        print(f"  ratio COPY / executemany: {fast_rate / slow_rate:.1f}x (target >= 10x)")
        started = time.perf_counter()
        generated = sum(1 for _ in sample_records(args.compare_count))
        generation = time.perf_counter() - started
        print(f"  (generating the records alone: {generated / generation:,.0f} products/s)")

        print(f"big load: {args.count:,} sample products, COPY path, batches of {BATCH_SIZE}")
        upgrade(server.sqlalchemy_url)
        engine = make_engine(server.sqlalchemy_url)
        try:
            elapsed = load_sample_catalog(engine, args.count, progress=_print_progress)
            print(f"loaded {args.count:,} products in {elapsed:.1f} s ({args.count / elapsed:,.0f} products/s)")
            started = time.perf_counter()
            _print_sizes(engine)
            print(f"(ANALYZE and size queries: {time.perf_counter() - started:.1f} s)")
        finally:
            engine.dispose()


if __name__ == "__main__":
    main()
