"""The engine worker that Nuke and Blender talk to: JSON lines on stdin/stdout.

`vrmbg worker` keeps models loaded between requests and answers `ensure` from the temporal
cache, so a host only ever reads finished matte files. The message contract is the README's
"Hosts" section (and `vrmbg.plugin.protocol` for the names).

    protocol.py   one request line -> a checked `Request` (or a `BadRequest` saying why)
    events.py     the thread-safe writer of event lines
    sessions.py   open shots by session id, re-opened lazily after a model release
    compute.py    job queues on their own threads, with supersede and cancel
    jobs.py       what queued requests do: open a shot, ensure frames, clear a chain
    server.py     the request loop that ties them together
"""
