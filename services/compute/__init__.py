"""Work on other machines (issue 18): Redis, the Dramatiq broker, the worker registry, signing.

Single node (`LVS_REDIS_URL` empty) is today's behaviour: nothing here imports `redis` or
`dramatiq` on that path (`enabled()` is False and nothing else is called). With Redis:

- `settings.ComputeSettings.of(settings)` (or `compute_settings(settings)`): the settings —
  redis_url, local_work, path_map, node_secret, worker_scratch, idle, shared
  (LVS_TRANSCODE_SHARED) — and `.enabled`.
- `conn.redis_link(url)` → a `RedisLink` shared per URL in a process: `.client()` gives a
  `redis.Redis` or None while Redis is unreachable (one WARNING when it goes, one INFO when it
  comes back; retried at most every `RETRY` seconds); `.notice()` is the dashboard's line or
  None; `.failed()` marks it down after a command raised.
- `broker.actor(name, queue=...)`: declare a Dramatiq actor lazily (a decorator that records
  it; the broker is built only when Redis is configured). `broker.get_broker(url)` builds the
  RedisBroker once (heartbeat_timeout 15 s, dead_message_ttl 1 h: a dead worker's unacked
  messages are requeued within about a quarter minute) and declares every recorded actor.
  `broker.send(url, name, *args, queue=None, **kwargs)` enqueues (False when Redis is down).
- `registry`: `WorkerInfo` (id, host, url, cpus, encoders, hardware, sessions, capacity, load,
  started, seen), `announce(client, info, ttl)` (a key per worker that expires, and a last-seen
  record kept FORGET = 10 min), `workers(client)` (the live ones), `last_seen(client)` (every
  worker seen lately, with its heartbeat's age by Redis's clock), `choose(candidates)`
  (hardware first, then least busy), `queue_of(worker_id)` (a worker's own Dramatiq queue).
- `signing`: `sign(secret, method, path, expires)` / `verify(...)` / `headers(secret, method,
  path)`: HMAC-SHA256 of method, path and expiry between nodes (`X-LVS-Expires`,
  `X-LVS-Signature`).
- `bodies.read_piece(resp, sock, n, left, per_read)` / `read_all(resp, sock, cap, deadline,
  per_read)`: a worker's answer body read within a total time and a byte cap (a worker that
  trickles bytes is cut off, not waited for read by read); `cut_off_after(sock, seconds)`:
  the same for a status line and headers (the socket shut down, then TimeoutError).
- `pathmap.to_worker(path, path_map)`: a server media path as a worker sees it.
- `leases`: a session's lease `lvs:lease:<id>` = worker id with a TTL (`renew`, `holder`,
  `count_by_worker`, `release`), the viewer's position beside it (`positions`) and a worker's
  "cannot take it" (`report_error`, `error_of`).
- `status.snapshot(cfg)` → `ComputeStatus` (redis "single node"/"ok"/"unreachable", the
  notice line, live workers, leases per worker, every Dramatiq queue's waiting/delayed/
  running/dead counts, workers gone quiet as `stale`; `.rows()` gives each worker's state
  ok/busy/stale): what the dashboard, Prometheus and `flask workers` show; `status.cached(cfg)`
  is the same at most 1.5 s old, never waiting more than 0.5 s for a Redis that hangs.
- `node.Node`: a worker process's parts — heartbeat loop, Dramatiq worker threads, and an
  HTTP server (werkzeug's threaded server) for whatever WSGI app the caller gives it.

May import: the shared core (errors, metrics) and config. Domain packages (playback, previews)
and operate (the dashboard) import this package, never the other way round.
"""
