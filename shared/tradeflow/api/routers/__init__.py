"""One router per resource, all under /v1 (see `tradeflow.api.app.ROUTERS`)."""
