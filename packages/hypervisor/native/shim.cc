#include <napi.h>
// Placeholder so the skeleton builds; the syscall shim lands with the hypervisor work.
static Napi::Object Init(Napi::Env env, Napi::Object exports) { return exports; }
NODE_API_MODULE(kvm_shim, Init)
