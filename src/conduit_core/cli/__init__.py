"""The `conduit` command line."""
