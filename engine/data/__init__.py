"""Bars: schema and rules, store, importer, demo universe, benchmarks, paths."""
