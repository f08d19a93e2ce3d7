"""gunicorn settings shared by the demo, compose and the load benchmark (``gunicorn -c``).

Threads rather than many processes: a reader's requests are short and mostly wait on the
database or on storage, and a few processes keep memory low on a small host. Every value can be
overridden by the environment so that one file serves a laptop and a hospital's server.
"""

import os

bind = os.environ.get("VBQ_BIND", "127.0.0.1:8000")
workers = int(os.environ.get("VBQ_WEB_WORKERS", "2"))
worker_class = "gthread"
threads = int(os.environ.get("VBQ_WEB_THREADS", "8"))
timeout = int(os.environ.get("VBQ_WEB_TIMEOUT", "120"))
graceful_timeout = 20
keepalive = 5
accesslog = os.environ.get("VBQ_ACCESS_LOG") or None
errorlog = "-"
wsgi_app = "vbqweb.wsgi:application"
# gunicorn 23+ opens a control socket under $HOME shared by every gunicorn of the user (demo,
# tests, benchmark): off, since nothing here uses it.
control_socket_disable = True
