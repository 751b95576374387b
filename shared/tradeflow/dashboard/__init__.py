"""The trader's dashboard: a static page (HTML, CSS, vanilla JS modules) served by the REST API at `/`.

It talks to the API like any client: REST under `/v1` with the trader's bearer token (kept in the tab's
sessionStorage, taken from the URL fragment `#token=...` or pasted), and the WebSocket API for live
updates. `serve.install` adds its routes to the FastAPI app; `static/` holds the page, and
`static/vendor/` the chart library built by `make dashboard` (TradingView's lightweight-charts, from npm).
"""
