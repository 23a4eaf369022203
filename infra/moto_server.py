"""moto's server, with requests applied one at a time.

moto's TransactWriteItems copies the tables before it starts and puts the copy back when the
transaction is cancelled. With requests handled concurrently (moto_server's default), that restore
can undo a write another request has just committed, which DynamoDB never does: concurrency tests
would then fail on the emulator, not on the hub. Serialising requests gives them the isolation
DynamoDB guarantees, while connections are still accepted concurrently.

usage: python infra/moto_server.py HOST PORT
"""

import os
import sys
import threading

from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app
from moto.server import MotoRequestHandler
from werkzeug.serving import run_simple


def main() -> None:
    host, port = sys.argv[1], int(sys.argv[2])
    os.environ.setdefault("MOTO_PORT", str(port))
    app = DomainDispatcherApplication(create_backend_app)
    lock = threading.Lock()

    def serialised(environ, start_response):
        with lock:
            # Materialise the body inside the lock: the work happens when it is iterated.
            return list(app(environ, start_response))

    run_simple(host, port, serialised, threaded=True, request_handler=MotoRequestHandler)


if __name__ == "__main__":
    main()
