"""The streams each broker account needs (the streamer's default `StreamFactory`).

- Alpaca: the account's trade updates (one connection per account: Alpaca allows no more), and
  market-data bars of the symbols its deployments trade (stocks on the IEX feed, crypto on Alpaca's
  crypto feed, one `AlpacaBars` handles both).
- A ccxt exchange: `watch_orders` (order updates with running fill totals) and `watch_ohlcv` of the
  symbols, through ccxt.pro.

The credentials are read from Secrets Manager as the `streamer` (audited, like every read). The SDK
modules are imported here, inside the factory, so the streamer's own modules stay importable (and
testable) without them.
"""

from __future__ import annotations

from tradeflow.accounts.credentials import AlpacaCredentials, CcxtCredentials, read_broker_credentials
from tradeflow.storage.accounts import AccountRepository
from tradeflow.streaming.source import AccountTarget, BrokerStream

ACTOR = "streamer"


def streams_for(target: AccountTarget) -> list[BrokerStream]:
    account = AccountRepository().get(target.tenant_id, target.account_id)
    if account is None:
        return []
    credentials = read_broker_credentials(target.tenant_id, target.account_id, ACTOR)
    who = f"{target.tenant_id}/{target.account_id}"
    streams: list[BrokerStream] = []
    if isinstance(credentials, AlpacaCredentials):
        from tradeflow.brokers.alpaca_streams import AlpacaBars, AlpacaTradeUpdates

        paper = account.broker_config.get("paper", True) is not False
        streams.append(AlpacaTradeUpdates(credentials, paper, name=f"alpaca:trade_updates:{who}"))
        if target.symbols:
            # the symbols are part of a market-data stream's name: a changed symbol set replaces only it,
            # never the account's one trade-updates connection
            streams.append(AlpacaBars(credentials, target.symbols, name=f"alpaca:bars:{who}:{_listed(target)}"))
    elif isinstance(credentials, CcxtCredentials):
        from tradeflow.brokers.ccxt_streams import CcxtOhlcv, CcxtOrders

        streams.append(CcxtOrders(account, credentials, target.symbols))
        if target.symbols:
            ohlcv = CcxtOhlcv(account, credentials, target.symbols)
            ohlcv.name = f"{ohlcv.name}:{_listed(target)}"
            streams.append(ohlcv)
    return streams


def _listed(target: AccountTarget) -> str:
    return ",".join(sorted(target.symbols))
