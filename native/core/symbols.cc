#include "core/symbols.h"

#include <dlfcn.h>

namespace vbp {

void* findSymbol(const char* name) {
  if (void* symbol = dlsym(RTLD_DEFAULT, name)) return symbol;
  Dl_info self{};
  if (dladdr(reinterpret_cast<void*>(&findSymbol), &self) == 0 || self.dli_fname == nullptr) return nullptr;
  void* handle = dlopen(self.dli_fname, RTLD_LAZY | RTLD_NOLOAD);
  if (handle == nullptr) return nullptr;
  void* symbol = dlsym(handle, name);
  dlclose(handle);  // RTLD_NOLOAD took a reference; the library stays loaded
  return symbol;
}

}  // namespace vbp
