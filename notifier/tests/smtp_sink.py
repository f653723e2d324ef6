#!/usr/bin/env python3
"""An SMTP sink for notifier/tests/channels.rs: a real SMTP server (aiosmtpd's) on 127.0.0.1.

    smtp_sink.py OUT_DIR [--port PORT]

Listens on 127.0.0.1:PORT (0, the default, lets the system pick a free port), prints the port
on stdout once it accepts connections, and writes each message it receives as
OUT_DIR/msg-N.json: the envelope (mail_from, rcpt_tos), the headers the test checks (from,
to, subject, decoded), the content type, charset and transfer encoding, the text body decoded
(quoted-printable or base64 undone) and the raw data. A message is written to a temporary name
first and renamed, so a file that exists is complete.

RCPT TO a local part `tempfail` is answered 451, `nouser` 550 (the test's SMTP error cases).
The sink stops when its stdin closes (the test dropping its handle), or on SIGTERM.

aiosmtpd's Controller is not used: it checks readiness by connecting to the configured port,
which fails with port 0; aiosmtpd's SMTP protocol is served on an asyncio server instead.
"""

import argparse
import asyncio
import email
import email.policy
import json
import os
import signal
import sys

from aiosmtpd.smtp import SMTP


class Sink:
    def __init__(self, out_dir):
        self.out_dir = out_dir
        self.count = 0

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        local = address.split("@", 1)[0].lower()
        if local == "tempfail":
            return "451 4.3.0 Try again later"
        if local == "nouser":
            return "550 5.1.1 No such user"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        data = envelope.original_content or envelope.content
        msg = email.message_from_bytes(data, policy=email.policy.default)
        body = msg.get_body(preferencelist=("plain",))
        record = {
            "mail_from": envelope.mail_from,
            "rcpt_tos": envelope.rcpt_tos,
            "from": str(msg["From"]),
            "to": str(msg["To"]),
            "subject": str(msg["Subject"]),
            "message_id": str(msg["Message-ID"]),
            "content_type": msg.get_content_type(),
            "charset": msg.get_content_charset(),
            "transfer_encoding": msg.get("Content-Transfer-Encoding"),
            "text": body.get_content() if body is not None else None,
            "data": data.decode("utf-8", errors="replace"),
        }
        self.count += 1
        path = os.path.join(self.out_dir, "msg-%d.json" % self.count)
        with open(path + ".tmp", "w", encoding="utf-8") as f:
            json.dump(record, f, ensure_ascii=False, indent=1)
        os.replace(path + ".tmp", path)
        return "250 Message accepted"


async def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out_dir")
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args()
    os.makedirs(args.out_dir, exist_ok=True)
    handler = Sink(args.out_dir)
    loop = asyncio.get_running_loop()
    server = await loop.create_server(
        lambda: SMTP(handler, hostname="sink.invalid"), host="127.0.0.1", port=args.port
    )
    print(server.sockets[0].getsockname()[1], flush=True)
    stop = loop.create_future()
    loop.add_signal_handler(signal.SIGTERM, lambda: stop.done() or stop.set_result(None))
    stdin_closed = loop.run_in_executor(None, sys.stdin.buffer.read)
    await asyncio.wait([stop, stdin_closed], return_when=asyncio.FIRST_COMPLETED)
    server.close()
    # Exit at once: the executor thread blocked on stdin must not hold the process.
    os._exit(0)


if __name__ == "__main__":
    asyncio.run(main())
