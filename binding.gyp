# node-gyp build of the addon, used by node-gyp-build's install fallback (`npm install` with no matching
# prebuild). The project's own build is CMakeLists.txt (cmake-js); scripts/libtorch-config.js finds
# LibTorch for both in the same order.
{
  "targets": [
    {
      "target_name": "torch_vbp",
      "sources": ["<!@(node scripts/libtorch-config.js sources)"],
      "include_dirs": [
        "native",
        "<!(node -p \"require('node-addon-api').include_dir\")",
        "<!@(node scripts/libtorch-config.js include)"
      ],
      "defines": [
        "NAPI_VERSION=8",
        "NAPI_CPP_EXCEPTIONS",
        "NODE_ADDON_API_DISABLE_DEPRECATED",
        "<!@(node scripts/libtorch-config.js defines)"
      ],
      "cflags!": ["-fno-exceptions"],
      "cflags_cc!": ["-fno-exceptions", "-fno-rtti", "-std=gnu++14", "-std=gnu++17", "-std=gnu++20"],
      "cflags_cc": ["<!(node scripts/libtorch-config.js cxxstd)", "-fexceptions", "-frtti", "-O2", "-Wall", "-Wextra", "-Wno-unused-parameter"],
      "libraries": ["<!@(node scripts/libtorch-config.js libs)"],
      "ldflags": [
        "-Wl,--no-as-needed",
        "-Wl,--disable-new-dtags",
        "-Wl,-rpath,'$$ORIGIN'",
        "-Wl,-rpath,<!(node scripts/libtorch-config.js libdir)"
      ]
    }
  ]
}
