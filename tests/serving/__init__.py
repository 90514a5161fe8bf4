"""Tests of ``engine serve`` (engine/serving)."""
