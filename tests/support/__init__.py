"""Test support: the real services the integration tests run against."""
