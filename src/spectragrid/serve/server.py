"""Run the page's app with uvicorn: in the foreground (`spectragrid serve`) or in a thread
(tests and the load benchmark), on a loopback address unless told otherwise."""

from __future__ import annotations

import socket
import threading
import time
from dataclasses import dataclass
from typing import Any

import uvicorn

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8000


def _config(app: Any, host: str, port: int) -> uvicorn.Config:
    # no access log: one line per request would cost more than a small file's scoring
    return uvicorn.Config(app, host=host, port=port, log_level="warning", access_log=False)


def serve_forever(app: Any, host: str = DEFAULT_HOST, port: int = DEFAULT_PORT) -> None:
    uvicorn.Server(_config(app, host, port)).run()


@dataclass
class RunningServer:
    url: str
    server: uvicorn.Server
    thread: threading.Thread

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


def start_in_thread(app: Any, host: str = DEFAULT_HOST, port: int = 0) -> RunningServer:
    """Serve `app` from a thread on `host` (port 0: a free one); returns once it listens."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    server = uvicorn.Server(_config(app, host, sock.getsockname()[1]))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the server did not start")
        time.sleep(0.02)
    return RunningServer(f"http://{host}:{sock.getsockname()[1]}", server, thread)
