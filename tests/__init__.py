"""The test suite: a package, so ``tests.oracles`` imports alike from tests/ and bench/."""
