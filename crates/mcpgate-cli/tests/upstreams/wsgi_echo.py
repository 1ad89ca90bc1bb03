"""A WSGI MCP upstream on Python's own wsgiref server: answers every request with the CGI
environment's HTTP_* variables as JSON. wsgiref reads `X_Mcpgate_Groups` as `X-Mcpgate-Groups`
(HTTP_X_MCPGATE_GROUPS) and joins repeated names with commas, as CGI and PHP servers do: the
upstream the gateway's header filtering must hold against.

Usage: python3 wsgi_echo.py  (listens on an ephemeral 127.0.0.1 port, printed as the first line)
"""

import json
from wsgiref.simple_server import WSGIRequestHandler, make_server


def app(environ, start_response):
    seen = {k: v for k, v in environ.items() if k.startswith("HTTP_")}
    body = json.dumps(seen).encode()
    start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
    return [body]


class Quiet(WSGIRequestHandler):
    def log_message(self, *args):
        pass


server = make_server("127.0.0.1", 0, app, handler_class=Quiet)
print(server.server_port, flush=True)
server.serve_forever()
