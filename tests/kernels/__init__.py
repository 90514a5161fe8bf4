"""Kernel tests: each kernel against its oracles and its pure-Python twin."""
