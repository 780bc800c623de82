"""A webhook receiver: checks each delivery's signature, prints the event as a JSON line."""

import json
import os
import sys
from http.server import BaseHTTPRequestHandler, HTTPServer

from standardwebhooks import Webhook
from standardwebhooks.webhooks import WebhookVerificationError

hook = Webhook(os.environ["WEBHOOK_SECRET"])  # the whsec_... shown when you registered


class Receiver(BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        try:
            event = hook.verify(body, dict(self.headers))  # signature, and a timestamp of now
        except WebhookVerificationError:
            self.send_response(401)
        else:
            print(json.dumps({"id": self.headers["webhook-id"], **event}), flush=True)
            self.send_response(204)  # answer at once; do the work elsewhere
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        pass  # stdout is for events


HTTPServer(("127.0.0.1", int(sys.argv[1])), Receiver).serve_forever()
