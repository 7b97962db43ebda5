"""Bundled models (registry: create_model, list_models)."""
