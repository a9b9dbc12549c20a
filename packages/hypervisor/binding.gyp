{
  "targets": [
    {
      "target_name": "kvm_shim",
      "sources": ["native/shim.cc"],
      "include_dirs": ["<!(node -p \"require('node-addon-api').include_dir\")"],
      "cflags_cc": ["-std=c++17", "-O2", "-Wall"],
      # A worker thread that loads the addon while the process exits (a run that fails its checks
      # right after prestarting vCPU threads) must not abort in napi_throw on a terminating env.
      "defines": ["NAPI_VERSION=8", "NAPI_DISABLE_CPP_EXCEPTIONS", "NODE_API_SWALLOW_UNTHROWABLE_EXCEPTIONS"]
    }
  ]
}
