"""Live updates over WebSockets: the connections store, the client/server frame protocol, the service
behind the API Gateway WebSocket routes ($connect, $disconnect, $default) and the broadcaster.

The two settings that say where the WebSocket API is (set by CDK in AWS, by the local gateway locally):
"""

from typing import Final

MANAGEMENT_URL_ENV: Final = "TRADEFLOW_WS_MANAGEMENT_URL"  # where replies and updates are posted (@connections)
CLIENT_URL_ENV: Final = "TRADEFLOW_WS_URL"  # where clients connect (the dashboard reads it)
