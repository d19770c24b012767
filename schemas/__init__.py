"""Pydantic models shared by the edge, the control plane and the workers."""
