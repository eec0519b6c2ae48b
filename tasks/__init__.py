"""Thin Prefect tasks and Ray actors over the ``sym3dinv`` library (DESIGN.md "Layout")."""
