"""Offline cc_grpc_library over Debian's grpc_cpp_plugin.

Same call shape as upstream gRPC's cc_grpc_library, so switching to the real
@com_github_grpc_grpc rules later is a change of load() only. Limitation: the
proto_library must live in the same package as the macro call.
"""

def _grpc_cc_codegen_impl(ctx):
    proto_info = ctx.attr.src[ProtoInfo]
    outs = []
    args = ctx.actions.args()
    args.add("--plugin=protoc-gen-grpc=/usr/bin/grpc_cpp_plugin")
    bin_root = ctx.bin_dir.path
    if ctx.label.workspace_root:
        bin_root = bin_root + "/" + ctx.label.workspace_root
    grpc_out = bin_root
    if ctx.attr.generate_mocks:
        grpc_out = "generate_mock_code=true:" + grpc_out
    args.add("--grpc_out=" + grpc_out)
    descriptor_sets = proto_info.transitive_descriptor_sets
    args.add_joined("--descriptor_set_in", descriptor_sets, join_with = ":")
    for src in proto_info.direct_sources:
        path = src.short_path
        stem = path[:-len(".proto")]
        base = stem.split("/")[-1]
        outs.append(ctx.actions.declare_file(base + ".grpc.pb.h"))
        outs.append(ctx.actions.declare_file(base + ".grpc.pb.cc"))
        if ctx.attr.generate_mocks:
            outs.append(ctx.actions.declare_file(base + "_mock.grpc.pb.h"))
        args.add(path)
    ctx.actions.run(
        executable = ctx.executable._protoc,
        arguments = [args],
        inputs = descriptor_sets,
        outputs = outs,
        mnemonic = "GrpcCppCodegen",
        progress_message = "Generating gRPC C++ for %s" % ctx.label,
    )
    mocks = [f for f in outs if f.basename.endswith("_mock.grpc.pb.h")]
    headers = [f for f in outs if f.basename.endswith(".h") and f not in mocks]
    sources = [f for f in outs if f.basename.endswith(".cc")]
    return [
        DefaultInfo(files = depset(outs)),
        OutputGroupInfo(
            headers = depset(headers),
            sources = depset(sources),
            mocks = depset(mocks),
        ),
    ]

_grpc_cc_codegen = rule(
    implementation = _grpc_cc_codegen_impl,
    attrs = {
        "src": attr.label(providers = [ProtoInfo], mandatory = True),
        "generate_mocks": attr.bool(default = False),
        "_protoc": attr.label(
            default = "@com_google_protobuf//:protoc",
            executable = True,
            cfg = "exec",
        ),
    },
)

def cc_grpc_library(name, srcs, deps, grpc_only = True, generate_mocks = False, visibility = None, **kwargs):
    """Generates and compiles gRPC C++ service code for one proto_library.

    Args:
      name: the cc_library to create.
      srcs: a one-element list with the proto_library.
      deps: the matching cc_proto_library.
      grpc_only: must be True (kept for upstream signature compatibility).
      generate_mocks: also emit *_mock.grpc.pb.h with gmock stubs, in the
        testonly library <name>_mocks.
      visibility: visibility of the resulting cc_library.
      **kwargs: passed to cc_library.
    """
    if not grpc_only:
        fail("only grpc_only = True is supported")
    if len(srcs) != 1:
        fail("srcs must name exactly one proto_library")
    codegen = name + "_codegen"
    testonly = kwargs.get("testonly", False)
    _grpc_cc_codegen(
        name = codegen,
        src = srcs[0],
        generate_mocks = generate_mocks,
        testonly = testonly,
        visibility = ["//visibility:private"],
    )
    for group in ["headers", "sources", "mocks"]:
        native.filegroup(
            name = codegen + "_" + group,
            srcs = [":" + codegen],
            output_group = group,
            testonly = testonly,
            visibility = ["//visibility:private"],
        )
    native.cc_library(
        name = name,
        srcs = [":" + codegen + "_sources"],
        hdrs = [":" + codegen + "_headers"],
        deps = deps + ["//third_party:grpc++"],
        visibility = visibility,
        **kwargs
    )
    if generate_mocks:
        # gmock stubs (MockFooStub) for tests, as a testonly library.
        native.cc_library(
            name = name + "_mocks",
            testonly = True,
            hdrs = [":" + codegen + "_mocks"],
            deps = [":" + name, "//third_party:gmock"],
            visibility = visibility,
        )
