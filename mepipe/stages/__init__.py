"""Pipeline stages: crop, align, flow, strain, compose."""
