#!/usr/bin/env python3
"""A third-party gRPC client of voipd: it knows no .proto file and learns the API from the
daemon's server reflection, as grpcurl or a home-automation script would.

usage: grpc_client.py SOCKET SERVICE METHOD [JSON_REQUEST]
prints one JSON object: {"services": [...], "response": {...}} or, for a server stream,
{"services": [...], "responses": [...]} (read until the stream ends), or on a gRPC error
{"services": [...], "error": {"code": "NAME", "details": "..."}}.
"""
import json
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


def main():
    sock, service, method = sys.argv[1:4]
    request_json = sys.argv[4] if len(sys.argv) > 4 else "{}"
    # Without the authority option grpc-core sends the socket path as :authority.
    channel = grpc.insecure_channel(
        f"unix://{sock}", options=[("grpc.default_authority", "localhost")]
    )
    db = ProtoReflectionDescriptorDatabase(channel)
    services = sorted(db.get_services())
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
