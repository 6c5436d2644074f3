"""Schemas: declared and inferred types, drift between schemas, evolution, and the versioned store."""
