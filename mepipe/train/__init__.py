"""Training and evaluation on caches."""
