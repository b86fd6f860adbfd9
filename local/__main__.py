"""`make run`: start the local stack and serve it until Ctrl-C."""

from __future__ import annotations

import logging
import signal
import sys
import threading
from types import FrameType

from werkzeug.serving import make_server

from local.gateway import Gateway
from local.stack import LocalStack, StackConfig


def main() -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    config = StackConfig.from_env()
    stack = LocalStack(config)
    stack.start()
    server = make_server(config.host, config.port, Gateway(stack), threaded=True)
    port = server.socket.getsockname()[1]
    stopped = threading.Event()

    def shut_down(signum: int, frame: FrameType | None) -> None:
        stopped.set()
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGINT, shut_down)
    signal.signal(signal.SIGTERM, shut_down)
    _print_banner(config, port, stack.endpoint, stack.websocket_url)
    try:
        server.serve_forever()
    finally:
        stack.stop()
    return 0


_EXAMPLE = '{"userId":"ada","event":"Product Added","properties":{"sku":"42","price":9.5}}'


def _print_banner(
    config: StackConfig, port: int, moto_endpoint: str, websocket_url: str | None
) -> None:
    base = f"http://{config.host}:{port}"
    lines = [
        "",
        "Nudge local stack is ready (template.yaml on moto; no AWS account, no Docker)",
        f"  beacon API   {base}/v1/track  (also /v1/identify, /v1/page, /v1/batch, ...)",
        f"  write key    {config.write_key}",
        f"  demo shop    {base}/demo   (the browser SDK at {base}/sdk/nudge.js)",
        f"  in-app       {websocket_url}   (WebSocket API: the SDK's socket option)",
        f"  email links  {base}/o/<token>, /c/<token>, /u/<token>  (signed tokens)",
        f"  API docs     {base}/docs   (OpenAPI: {base}/openapi.json)",
        f"  reports      {base}/_local/report  (HTML); {base}/v1/reports/triggers with",
        f"               Authorization: Bearer {config.admin_key}",
        f"  control API  {base}/_local/health, /_local/drain, /_local/clock/advance",
        "               /_local/users/<id>, /_local/explain/<id>, /_local/fires",
        "               /_local/outbox (emails, fires), /_local/outbox/<n> (an email as HTML)",
        f"  local AWS    {moto_endpoint}   (moto; AWS_ENDPOINT_URL for your own scripts)",
        "",
        "Try it:",
        f"  curl -s -u {config.write_key}: {base}/v1/track -d '{_EXAMPLE}'",
        f"  curl -s -X POST {base}/_local/drain && curl -s {base}/_local/users/ada",
        "",
    ]
    sys.stdout.write("\n".join(lines) + "\n")
    sys.stdout.flush()


if __name__ == "__main__":
    raise SystemExit(main())
