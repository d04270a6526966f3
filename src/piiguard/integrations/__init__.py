"""Framework integrations. Each module imports its framework lazily; nothing imports them."""
