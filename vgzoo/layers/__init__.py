"""Reusable blocks shared by the model families."""
