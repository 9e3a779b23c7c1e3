"""The peer servers the benchmark measures Parsec against, each runnable as
``python -m bench.peers.<name> --port N --secret S``:

==================== ==================================================================
``socketio_server``  python-socketio (ASGI on uvicorn, in-memory manager; with
                     ``--workers N --redis URL``, N processes sharing rooms through
                     ``AsyncRedisManager``)
``broadcaster_server`` Starlette WebSockets + broadcaster (``memory://``) on uvicorn
``limit_server``     a minimal picows broadcaster: no protocol work, one frame per
                     publication
==================== ==================================================================
"""
