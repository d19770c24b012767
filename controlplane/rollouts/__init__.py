"""Guarded rollouts in the store: the guard a deploy asks for, and the rollout's lifecycle."""
