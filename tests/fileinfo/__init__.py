"""Tests of the print-file metadata reader (plain Python, no Home Assistant)."""
