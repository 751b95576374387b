"""Process-level plumbing shared by handlers: AWS clients and observability."""
