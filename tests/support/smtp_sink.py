#!/usr/bin/env python3
"""An SMTP server for the integration tests: it keeps nothing, it prints.

    smtp_sink.py --port N [--reply CODE] [--reply-at data|rcpt] [--watch-stdin]

Listens on 127.0.0.1:N (0 picks a free port), then prints ``READY <port>``.
Every accepted message is one line ``MAIL <json>`` with the keys ``from``,
``to`` (the envelope), ``subject``, ``headers`` (top-level, lowercased name ->
decoded value; a repeated header keeps its first value), ``text`` and
``html`` (the decoded text/plain and text/html bodies with LF line ends, or
null) and ``raw`` (the message as received, CRLF line ends).

With ``--reply CODE`` nothing is accepted: DATA (or, with ``--reply-at rcpt``,
every RCPT TO) is answered with CODE, and each refused message is one line
``REFUSED <json>`` with ``from`` and ``to``.

Exits cleanly on SIGTERM or SIGINT, and with ``--watch-stdin`` when its stdin
closes (so it dies with the test process that spawned it).
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

# Texts for the codes tests are likely to use; any other code gets a generic one.
REPLY_TEXTS = {
    421: "4.3.2 Service not available (test sink)",
    450: "4.2.1 Mailbox unavailable (test sink)",
    451: "4.3.0 Temporary failure (test sink)",
    452: "4.3.1 Insufficient storage (test sink)",
    550: "5.7.1 Rejected (test sink)",
    552: "5.3.4 Message too big (test sink)",
    554: "5.0.0 Transaction failed (test sink)",
}


def emit(kind, payload):
    sys.stdout.write(f"{kind} {json.dumps(payload, ensure_ascii=False)}\n")
    sys.stdout.flush()


def body(message, subtype):
    part = message.get_body(preferencelist=(subtype,))
    if part is None or part.get_content_type() != f"text/{subtype}":
        return None
    try:
        content = part.get_content()
    except (LookupError, ValueError):
        # An unknown charset or broken encoding: the undecoded payload.
        payload = part.get_payload(decode=True) or b""
        content = payload.decode("utf-8", errors="replace")
    # SMTP carries CRLF; tests compare with Rust string literals.
    return content.replace("\r\n", "\n")


def describe(envelope):
    raw_bytes = envelope.original_content or envelope.content or b""
    if isinstance(raw_bytes, str):
        raw_bytes = raw_bytes.encode("utf-8", errors="surrogateescape")
    message = email.message_from_bytes(raw_bytes, policy=email.policy.default)
    headers = {}
    for name, value in message.items():
        headers.setdefault(name.lower(), str(value))
    return {
        "from": envelope.mail_from or "",
        "to": list(envelope.rcpt_tos),
        "subject": str(message.get("subject", "")),
        "headers": headers,
        "text": body(message, "plain"),
        "html": body(message, "html"),
        "raw": raw_bytes.decode("utf-8", errors="replace"),
    }


class Handler:
    def __init__(self, reply, reply_at):
        self.reply = reply
        self.reply_at = reply_at

    def refusal(self):
        return f"{self.reply} {REPLY_TEXTS.get(self.reply, 'Refused (test sink)')}"

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if self.reply is not None and self.reply_at == "rcpt":
            emit("REFUSED", {"from": envelope.mail_from or "", "to": [address]})
            return self.refusal()
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        if self.reply is not None:
            emit(
                "REFUSED",
                {"from": envelope.mail_from or "", "to": list(envelope.rcpt_tos)},
            )
            return self.refusal()
        try:
            emit("MAIL", describe(envelope))
        except Exception as error:  # noqa: BLE001 - report, don't drop the mail
            print(f"smtp_sink: cannot parse a message: {error!r}", file=sys.stderr)
            return "451 4.3.0 Sink could not parse the message"
        return "250 Message accepted for delivery"


async def serve(args):
    loop = asyncio.get_running_loop()
    handler = Handler(args.reply, args.reply_at)

    def factory():
        return SMTP(
            handler,
            hostname="smtp-sink.test",
            decode_data=False,
            enable_SMTPUTF8=True,
        )

    server = await loop.create_server(
        factory, host="127.0.0.1", port=args.port, reuse_address=True
    )
    port = server.sockets[0].getsockname()[1]

    done = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, done.set)
    if args.watch_stdin:
        stdin = sys.stdin.fileno()

        def on_stdin():
            try:
                data = os.read(stdin, 4096)
            except OSError:
                data = b""
            if not data:
                loop.remove_reader(stdin)
                done.set()

        loop.add_reader(stdin, on_stdin)

    sys.stdout.write(f"READY {port}\n")
    sys.stdout.flush()

    await done.wait()
    server.close()
    # From Python 3.12 this also waits for open connections (a client's pool
    # may keep one idle); asyncio.run cancels what is left.
    try:
        await asyncio.wait_for(server.wait_closed(), timeout=2)
    except asyncio.TimeoutError:
        pass


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    parser.add_argument(
        "--reply",
        type=int,
        default=None,
        metavar="CODE",
        help="refuse every message with this SMTP code (e.g. 451, 550)",
    )
    parser.add_argument(
        "--reply-at",
        choices=("data", "rcpt"),
        default="data",
        help="which command --reply answers (default: data)",
    )
    parser.add_argument(
        "--watch-stdin", action="store_true", help="exit when stdin closes"
    )
    args = parser.parse_args()
    if args.reply is not None and not 400 <= args.reply <= 599:
        parser.error("--reply must be a 4xx or 5xx code")
    try:
        asyncio.run(serve(args))
    except OSError as error:
        print(f"smtp_sink: {error}", file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    main()
