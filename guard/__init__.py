"""The guard: evaluates every guarded rollout every few seconds and acts on what it finds.

``decide`` is the decision (pure: the simulation tests feed it seeded data), ``observe``
reads what it rests on from ClickHouse, ``service`` is the process (one active at a time,
by a lease in the store) and ``routes`` are ``GET .../rollout`` and ``POST .../rollout/stop``.
"""
