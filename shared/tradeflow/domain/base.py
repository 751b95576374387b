"""The base of every domain model.

`defer_build`: pydantic builds a model's validator on first use instead of at import, so a function
only pays for the models it touches — the strategy function's cold start never builds the ledger's.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class Model(BaseModel):
    model_config = ConfigDict(defer_build=True)
