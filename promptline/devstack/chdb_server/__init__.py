"""ClickHouse's HTTP interface served from an in-process chDB engine, for local mode and tests.

One process owns one chDB data directory and answers the ordinary ClickHouse HTTP
protocol, so clickhouse-connect talks to it exactly as it would to a real server.
Run it with ``python -m promptline.devstack.chdb_server --port P --data-dir D``.
"""
