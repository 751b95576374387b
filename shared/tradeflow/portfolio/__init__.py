"""Read models over the books: marked positions, portfolio summaries and trading analytics."""
