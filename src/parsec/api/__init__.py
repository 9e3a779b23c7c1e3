"""The HTTP APIs: the service layer's surfaces over HTTP.

=================================  =========================================================
:mod:`parsec.api.centrifugo`       the Centrifugo server API (``POST /api/<method>``), its
                                   messages in :mod:`~parsec.api.centrifugo_models`
:mod:`parsec.api.management`       ParsecService, the management API (Twirp JSON,
                                   ``POST /twirp/parsec.ParsecService/<Method>``), its
                                   messages in :mod:`~parsec.api.management_models`
:mod:`parsec.api.twirp`            Twirp's JSON protocol on FastAPI routes
:mod:`parsec.api.errors`           what a failed request is, for both APIs; each renders
                                   it in its protocol's shape
=================================  =========================================================

Two model libraries, on purpose (ARCHITECTURE.md, chosen dependencies):

* **msgspec** for the Centrifugo API. It is on the hot path (``publish``, ``broadcast``
  and ``batch`` carry an application's whole publish load), it shares the engine's
  codec and Structs, and it passes ``data`` through as raw JSON, never decoded.
* **pydantic** for ParsecService, because FastAPI generates the OpenAPI document
  (``/openapi.json``) from pydantic models: field descriptions, patterns, protobuf's
  JSON scalar types (:mod:`parsec.api.protobuf_json`) and per-method error replies,
  which Schemathesis checks the service against. Management calls are few; validation
  cost there does not matter.

What a failure is (a ParsecError's code and message, a ClientError's code, a body that
does not fit its message, a bug) is decided once, in :mod:`parsec.api.errors`; each API
only renders it in the shape its protocol dictates: a Twirp error body with an HTTP
status, or Centrifugo's ``{"error": {"code", "message"}}`` with 200 (and, for a body that
is not JSON of the method's shape, Centrifugo's plain-text 400).
"""
