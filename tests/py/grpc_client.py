#!/usr/bin/env python3
"""A third-party gRPC client of voipd: it knows no .proto file and learns the API from the
daemon's server reflection, as grpcurl or a home-automation script would.

usage: grpc_client.py TARGET SERVICE METHOD [JSON_REQUEST]
TARGET: a Unix socket path, tls:HOST:PORT for the TCP listener (or plain:HOST:PORT, without
TLS, to see it refused); with tls: $VOIPD_CA names the
PEM certificate to trust and $VOIPD_TOKEN, if set, is sent as "authorization: Bearer …".
prints one JSON object: {"services": [...], "response": {...}} or, for a server stream,
{"services": [...], "responses": [...]} (read until the stream ends), or on a gRPC error
{"services": [...], "error": {"code": "NAME", "details": "..."}}.
"""
import json
import os
import sys

import grpc
from google.protobuf import json_format, message_factory
from google.protobuf.descriptor_pool import DescriptorPool
from grpc_reflection.v1alpha.proto_reflection_descriptor_database import (
    ProtoReflectionDescriptorDatabase,
)


def message_class(desc):
    if hasattr(message_factory, "GetMessageClass"):
        return message_factory.GetMessageClass(desc)
    return message_factory.MessageFactory(desc.file.pool).GetPrototype(desc)


def open_channel(target):
    if target.startswith("plain:"):
        # TCP without TLS: what a misconfigured client would try.
        return grpc.insecure_channel(target[len("plain:"):])
    if not target.startswith("tls:"):
        # Without the authority option grpc-core sends the socket path as :authority.
        return grpc.insecure_channel(
            f"unix://{target}", options=[("grpc.default_authority", "localhost")]
        )
    with open(os.environ["VOIPD_CA"], "rb") as f:
        creds = grpc.ssl_channel_credentials(root_certificates=f.read())
    token = os.environ.get("VOIPD_TOKEN")
    if token is not None:
        creds = grpc.composite_channel_credentials(
            creds, grpc.access_token_call_credentials(token)
        )
    return grpc.secure_channel(target[len("tls:"):], creds)


def main():
    target, service, method = sys.argv[1:4]
    request_json = sys.argv[4] if len(sys.argv) > 4 else "{}"
    channel = open_channel(target)
    db = ProtoReflectionDescriptorDatabase(channel)
    try:
        services = sorted(db.get_services())
    except grpc.RpcError as e:
        print(json.dumps({"error": {"code": e.code().name, "details": e.details()}}))
        return
    pool = DescriptorPool(db)
    m = pool.FindServiceByName(service).FindMethodByName(method)
    req_cls, resp_cls = message_class(m.input_type), message_class(m.output_type)
    request = json_format.Parse(request_json, req_cls())
    path = f"/{service}/{method}"
    out = {"services": services}
    to_dict = lambda msg: json_format.MessageToDict(msg, preserving_proto_field_name=True)
    try:
        if m.server_streaming:
            call = channel.unary_stream(
                path, request_serializer=req_cls.SerializeToString,
                response_deserializer=resp_cls.FromString)
            out["responses"] = [to_dict(r) for r in call(request, timeout=30)]
        else:
            call = channel.unary_unary(
                path, request_serializer=req_cls.SerializeToString,
                response_deserializer=resp_cls.FromString)
            out["response"] = to_dict(call(request, timeout=10))
    except grpc.RpcError as e:
        out["error"] = {"code": e.code().name, "details": e.details()}
    print(json.dumps(out))


if __name__ == "__main__":
    main()
