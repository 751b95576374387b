"""One stack per stage: `tradeflow-<stage>`, composed of the constructs by concern."""

from __future__ import annotations

from typing import Any

from aws_cdk import Stack, Tags
from constructs import Construct

from tradeflow_infra.api import Api
from tradeflow_infra.config import StageConfig
from tradeflow_infra.history import History
from tradeflow_infra.observability import Observability
from tradeflow_infra.packaging import LayerSet
from tradeflow_infra.pipeline import Pipeline
from tradeflow_infra.realtime import Realtime
from tradeflow_infra.storage import Storage
from tradeflow_infra.streamer import Streamer


class TradeflowStack(Stack):
    def __init__(self, scope: Construct, construct_id: str, *, config: StageConfig, **kwargs: Any) -> None:
        super().__init__(scope, construct_id, **kwargs)
        Tags.of(self).add("project", "tradeflow")
        Tags.of(self).add("stage", config.stage)
        self.config = config
        self.layers = LayerSet(self, "Layers", config=config)
        self.storage = Storage(self, "Storage", config=config)
        self.history = History(self, "History", config=config, storage=self.storage)
        self.pipeline = Pipeline(self, "Pipeline", config=config, storage=self.storage, layers=self.layers)
        self.realtime = Realtime(
            self, "Realtime", config=config, storage=self.storage, pipeline=self.pipeline, layers=self.layers
        )
        self.api = Api(
            self,
            "Api",
            config=config,
            storage=self.storage,
            pipeline=self.pipeline,
            realtime=self.realtime,
            layers=self.layers,
        )
        self.streamer = Streamer(self, "Streamer", config=config, storage=self.storage, pipeline=self.pipeline)
        self.observability = Observability(
            self,
            "Observability",
            config=config,
            storage=self.storage,
            pipeline=self.pipeline,
            api=self.api,
            realtime=self.realtime,
            streamer=self.streamer,
        )
