"""The tradeflow CDK app's constructs, one module per concern, all built from the resource catalogue
(`tradeflow.catalogue`): storage, pipeline, api, realtime, streamer, observability, packaging."""
