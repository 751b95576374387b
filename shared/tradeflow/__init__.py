"""tradeflow: a serverless algorithmic trading platform.

The package is the domain core and its adapters: models (`tradeflow.domain`), the resource catalogue
(`tradeflow.catalogue`), storage, brokers, strategies, risk, execution and the local cloud. Lambda
entry points in `functions/` are thin wrappers around the services defined here.
"""

__version__ = "0.1.0"
