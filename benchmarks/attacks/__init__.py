"""Attacks the poisoning benchmark runs against the live service."""
