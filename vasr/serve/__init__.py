"""The server: ``app`` (the ASGI app and `vasr serve`), ``protocol`` (the ``/v1/stream`` WebSocket
protocol), ``metrics`` (Prometheus text) and ``static/`` (the web page). Torch-free, like the runtime
it serves.
"""
