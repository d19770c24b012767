"""Alembic migrations of the control-plane store; applied by ``promptline migrate``."""
