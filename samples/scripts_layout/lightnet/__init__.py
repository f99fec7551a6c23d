"""A small project package at the repository root; its scripts live in tools/."""
