"""The wire: protobuf messages and gRPC. The only importer of generated code."""
