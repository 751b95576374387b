"""Live updates over WebSockets: the connections store, the client/server frame protocol and the
service behind the API Gateway WebSocket routes ($connect, $disconnect, $default)."""
