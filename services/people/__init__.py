"""People and access: accounts, passwords, passkeys, sessions, API tokens, sign-in limits, TLS.

users, passwords (bcrypt), passkeys (WebAuthn), sessions (server-side, hashed tokens), apitokens
(API tokens and signed media URLs), ratelimit (sign-in limits shared across processes), tls.

May import: the shared core (db, errors). Nothing here knows about media.
"""
