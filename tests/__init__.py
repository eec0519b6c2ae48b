"""The test suite (a package, so ``tests/flows`` and ``tests/tasks`` never shadow the real ``flows`` and
``tasks`` packages: pytest then imports test modules as ``tests.flows.test_...``)."""
