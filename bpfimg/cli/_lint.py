"""Placeholder: filled in by the commit that adds this command."""
