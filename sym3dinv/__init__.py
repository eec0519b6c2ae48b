"""sym3dinv: 3D GAN inversion with a facial symmetry prior, as a library.

No Prefect or Ray imports anywhere under this package (tests/test_layering.py checks): the
orchestration layer lives in the top-level ``tasks`` and ``flows`` packages.
"""

__version__ = "0.1.0"
