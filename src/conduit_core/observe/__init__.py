"""Progress display and logging."""
