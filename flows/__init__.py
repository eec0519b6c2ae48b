"""Prefect flows of sym3dinv: ``bulk_invert`` (and its CLI ``sym3dinv invert``)."""
