"""The risk gate: trading controls, limits and position sizing between a signal and an order."""
