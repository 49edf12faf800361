"""Subscriptions with push notifications: never twice per (subscription, product), surviving restarts.

Modules, one job each:
- `models`: Subscription, the Notification outbox (primary key = the "never twice" guarantee), the matcher cursor;
- `product_filter`: FilterParam -> SQL condition on Product through the generic compiler of `auxip.odata`;
- `entity`: the Subscriptions entity set: JSON shape and the `auxip.odata` description its queries use;
- `store`: creation, ownership-scoped reads and the Pause/Resume/Cancel transitions;
- `matcher`: newly published products -> outbox rows, cursor advanced in the same transaction;
- `notifier`: lease due outbox rows (FOR UPDATE SKIP LOCKED), record delivery outcomes;
- `delivery`: the notification body and the HTTP POST with Basic auth;
- `retry`: exponential backoff with jitter, attempt and age limits;
- `dialect`: the PostgreSQL/SQLite differences (ON CONFLICT insert, SQLite write lock);
- `service`: the worker, `run_once()` and `run_forever(stop, interval)`.
The HTTP routes are in `auxip.api.subscriptions`.
"""
