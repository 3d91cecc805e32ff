"""A gRPC proxy that fails some calls on purpose: transient faults for the
Firestore emulator.

The Firestore client speaks gRPC (HTTP/2) to ``FIRESTORE_EMULATOR_HOST``, so
an HTTP/1 proxy cannot stand in front of it. This is a real gRPC server
with one generic handler: each call's method name, metadata and request
bytes (never decoded) are forwarded to the emulator over an insecure
channel, and the answer, or the emulator's own error status, is relayed.
Every ``every``-th call of a method in ``methods`` fails instead, in turn:

``before``
    ``UNAVAILABLE`` without reaching the emulator (an overloaded front end);
``after``
    forwarded and carried out, then ``UNAVAILABLE`` instead of the answer
    (the client cannot tell that its commit landed). Unary calls only: a
    server stream fails ``before`` instead, as a stream broken half-way is
    not something a retry helper can repair.

Bidirectional streams (``Listen``, ``Write``) are not proxied; the registry
uses neither. Every call is recorded (:attr:`GrpcFaultProxy.log`) with its
outcome. The server runs in the test process on 127.0.0.1.
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Iterator
from concurrent import futures
from dataclasses import dataclass, field
from typing import Any

import grpc  # type: ignore[import-untyped]

SERVER_STREAMING = frozenset({"BatchGetDocuments", "RunQuery", "RunAggregationQuery"})
BIDI_STREAMING = frozenset({"Listen", "Write"})
DEFAULT_METHODS = frozenset(
    {"Commit", "BatchGetDocuments", "BeginTransaction", "RunQuery", "Rollback"}
)
# Headers gRPC sets itself; forwarding them would be refused or duplicated.
_RESERVED = frozenset({"user-agent", "content-type", "te", "grpc-timeout", "grpc-accept-encoding"})


@dataclass(frozen=True)
class Call:
    method: str  # the short name: Commit, BatchGetDocuments, ...
    outcome: str  # "ok", "before", "after", or the emulator's status name


@dataclass
class GrpcFaultProxy:
    upstream: str
    every: int
    methods: frozenset[str]
    server: Any = None
    port: int = 0
    channel: grpc.Channel | None = None
    log: list[Call] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    enabled: bool = True
    _counter: itertools.count[int] = field(default_factory=lambda: itertools.count(1))
    _after_next: bool = False

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.port}"

    def injected(self) -> list[Call]:
        with self.lock:
            return [c for c in self.log if c.outcome in ("before", "after")]

    def _decide(self, name: str, streaming: bool) -> str:
        if not self.enabled or name not in self.methods:
            return "ok"
        with self.lock:
            if next(self._counter) % self.every:
                return "ok"
            if streaming:
                return "before"
            self._after_next = not self._after_next
            return "after" if self._after_next else "before"

    def _record(self, name: str, outcome: str) -> None:
        with self.lock:
            self.log.append(Call(name, outcome))

    def _metadata(self, context: grpc.ServicerContext) -> list[tuple[str, str | bytes]]:
        return [
            (item.key, item.value)
            for item in context.invocation_metadata()
            if not item.key.startswith(":") and item.key not in _RESERVED
        ]

    def unary(self, method: str, request: bytes, context: grpc.ServicerContext) -> bytes:
        name = method.rsplit("/", 1)[1]
        fault = self._decide(name, streaming=False)
        if fault == "before":
            self._record(name, fault)
            context.abort(grpc.StatusCode.UNAVAILABLE, "injected by the proxy")
        assert self.channel is not None
        try:
            answer: bytes = self.channel.unary_unary(method)(
                request, metadata=self._metadata(context), timeout=context.time_remaining()
            )
        except grpc.RpcError as error:
            self._record(name, error.code().name)
            context.abort(error.code(), error.details())
        self._record(name, fault)
        if fault == "after":
            context.abort(grpc.StatusCode.UNAVAILABLE, "injected by the proxy after forwarding")
        return answer

    def stream(self, method: str, request: bytes, context: grpc.ServicerContext) -> Iterator[bytes]:
        name = method.rsplit("/", 1)[1]
        fault = self._decide(name, streaming=True)
        if fault == "before":
            self._record(name, fault)
            context.abort(grpc.StatusCode.UNAVAILABLE, "injected by the proxy")
        assert self.channel is not None
        try:
            yield from self.channel.unary_stream(method)(
                request, metadata=self._metadata(context), timeout=context.time_remaining()
            )
        except grpc.RpcError as error:
            self._record(name, error.code().name)
            context.abort(error.code(), error.details())
        self._record(name, "ok")

    def stop(self) -> None:
        if self.server is not None:
            self.server.stop(grace=None).wait()
        if self.channel is not None:
            self.channel.close()


class _Handler(grpc.GenericRpcHandler):  # type: ignore[misc]
    def __init__(self, proxy: GrpcFaultProxy) -> None:
        self.proxy = proxy

    def service(self, details: grpc.HandlerCallDetails) -> grpc.RpcMethodHandler | None:
        method: str = details.method
        name = method.rsplit("/", 1)[1]
        if name in BIDI_STREAMING:
            return None  # UNIMPLEMENTED
        if name in SERVER_STREAMING:
            return grpc.unary_stream_rpc_method_handler(
                lambda request, context: self.proxy.stream(method, request, context)
            )
        return grpc.unary_unary_rpc_method_handler(
            lambda request, context: self.proxy.unary(method, request, context)
        )


def start_grpc_fault_proxy(
    upstream: str, *, every: int = 4, methods: frozenset[str] = DEFAULT_METHODS
) -> GrpcFaultProxy:
    """Serve on a free 127.0.0.1 port, forwarding to ``upstream`` (host:port)."""
    if every < 1:
        raise ValueError("every must be at least 1")
    proxy = GrpcFaultProxy(upstream=upstream, every=every, methods=methods)
    proxy.channel = grpc.insecure_channel(upstream)
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=64, thread_name_prefix="grpc-fp"))
    server.add_generic_rpc_handlers((_Handler(proxy),))
    proxy.port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    proxy.server = server
    return proxy
