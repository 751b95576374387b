"""The streamer: the persistent broker streams (market data, trade updates) held by one long-running
process per deployment of the platform (a Fargate task in AWS, a thread in the local cloud)."""
