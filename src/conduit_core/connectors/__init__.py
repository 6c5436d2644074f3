"""Source and destination connectors, and the registry that finds them."""
