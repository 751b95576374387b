"""EventBridge Scheduler: one schedule per deployed (strategy, symbol)."""
