"""Brokers: the port every broker adapter implements, and the built-in paper broker."""
