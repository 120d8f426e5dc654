#!/usr/bin/env python3
"""Regenerates inbound.jsonl: sample webhook deliveries to the acme tenant, each signed with the
signing secret in tenant.toml (HMAC-SHA256 over the raw body, hex, `sha256=` prefix), the way
the generic-webhook connector verifies them. The texts are written for this example."""
import hashlib, hmac, json, pathlib

SECRET = b"acme-demo-signing-secret"
URL = "https://care.acme.example/hooks/acme/webhook"

events = [
    {"id": "tw-1001", "author": {"id": "u-311", "handle": "@casey_j", "name": "Casey Jones"},
     "text": "@AcmeCare my order #48213 never arrived and tracking hasn't moved in 6 days. Where is my order?",
     "created_at": "2026-11-20T09:12:00Z"},
    {"id": "tw-1002", "author": {"id": "u-902", "handle": "@prizes4u"},
     "text": "CONGRATULATIONS! You have won a cash prize. Click here to claim now!!!",
     "created_at": "2026-11-20T09:13:30Z"},
    {"id": "tw-1003", "author": {"id": "u-127", "handle": "@mira", "name": "Mira Okafor"},
     "text": "Just wanted to say the support team sorted my return in ten minutes. Amazing service, thank you!",
     "created_at": "2026-11-20T09:20:00Z"},
    {"id": "dm-2001", "private": True, "conversation": "dm-u-311",
     "author": {"id": "u-311", "handle": "@casey_j", "name": "Casey Jones"},
     "text": "I was charged twice for order 48213. I want a refund of the second charge.",
     "created_at": "2026-11-20T09:25:00Z"},
    {"id": "tw-1004", "author": {"id": "u-550", "handle": "@dave_rants"},
     "text": "@AcmeCare your app is crap, it crashed AGAIN and lost my basket. Worst update ever.",
     "created_at": "2026-11-20T09:31:00Z"},
    {"id": "tw-1005", "in_reply_to": "tw-1001", "conversation": "tw-1001",
     "author": {"id": "u-311", "handle": "@casey_j", "name": "Casey Jones"},
     "text": "@AcmeCare still nothing, and please don't tell me to call a 1-800 number.",
     "created_at": "2026-11-20T10:02:00Z"},
    {"id": "tw-1004", "type": "edit", "author": {"id": "u-550", "handle": "@dave_rants"},
     "text": "@AcmeCare your app crashed again and lost my basket. Disappointed with this update.",
     "created_at": "2026-11-20T09:33:00Z"},
    {"id": "tw-1006", "type": "like", "author": {"id": "u-127", "handle": "@mira"}},
    {"id": "tw-1007", "author": {"id": "u-640", "handle": "@sam_p", "name": "Sam Patel"},
     "text": "@AcmeCare you charged my card 4111 1111 1111 1111 twice for one order, sort it out",
     "created_at": "2026-11-20T10:15:00Z"},
    {"id": "tw-1008", "author": {"id": "u-777", "handle": "@troll_acct"},
     "text": "@AcmeCare what a load of crap lol",
     "created_at": "2026-11-20T10:20:00Z"},
    # Saturday evening, after closing: the away reply says when the team is back (Monday).
    {"id": "tw-1009", "author": {"id": "u-512", "handle": "@jo_m", "name": "Jo Marsh"},
     "text": "@AcmeCare tracking says my parcel was delivered but it's not here. Anyone around?",
     "created_at": "2026-11-21T19:40:00Z"},
]
# The platform delivers the first post again (a retry after a slow acknowledgement).
events.append(events[0])

lines = []
for event in events:
    body = json.dumps(event, ensure_ascii=False, separators=(",", ":"))
    sig = "sha256=" + hmac.new(SECRET, body.encode(), hashlib.sha256).hexdigest()
    lines.append(json.dumps({"connector": "webhook", "url": URL,
                             "headers": {"content-type": "application/json", "x-signature-256": sig},
                             "body": body}, ensure_ascii=False))
# A platform handshake: answered, nothing stored.
lines.append(json.dumps({"connector": "webhook", "method": "GET",
                         "url": URL + "?challenge=ping-7731&verify_token=acme-demo-verify-token"}))
pathlib.Path(__file__).with_name("inbound.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
