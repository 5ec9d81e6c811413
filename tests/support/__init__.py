"""Helpers of the tests and benchmarks: private peers and test-driver domains (not shipped)."""
