"""The ingestion edge: validates events, answers fast, and produces them to Kafka.

Routes (``ingest.routes``) read and check a body (``body``), find the prompt in the
in-memory catalog (``prompts``, ``prepare``), and hand prepared events to one pipeline
(``accept``): monthly signal quota (``quota``, ``quota_store``), signal ids
(``signal_ids``, ``node_lease``), records, and the producer (``producer``), which answers
only once Kafka acknowledged. See docs/edge.md.
"""
