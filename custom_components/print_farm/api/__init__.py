"""The REST API under /api/print_farm: one module per seed area, the plumbing in `base`."""
