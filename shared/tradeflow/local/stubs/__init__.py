"""Local stubs of real brokers' APIs (Alpaca; a ccxt exchange): REST and websocket streams on one
port each, speaking the brokers' own paths and payloads, so the unmodified SDKs (alpaca-py, ccxt) run
against them in tests and in the local cloud. They hold a simulated order book and market, and expose
control methods (inject a fill, drop or silence a stream, fail the next requests) for failure tests."""
