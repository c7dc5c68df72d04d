#include "core/pickle_scan.h"

#include <cstring>
#include <memory>

namespace vbp {
namespace {

// What the shadow keeps of a value: integers and strings exactly, tuples with their elements; lists,
// dicts, tensors, objects and the rest are opaque.
struct Value {
  enum class Kind { Int, Str, Tuple, Other } kind = Kind::Other;
  int64_t integer = 0;
  std::string text;
  std::shared_ptr<const std::vector<Value>> items;

  static Value ofInt(int64_t v) {
    Value x;
    x.kind = Kind::Int;
    x.integer = v;
    return x;
  }
  static Value ofStr(std::string s) {
    Value x;
    x.kind = Kind::Str;
    x.text = std::move(s);
    return x;
  }
  static Value ofTuple(std::vector<Value> items) {
    Value x;
    x.kind = Kind::Tuple;
    x.items = std::make_shared<const std::vector<Value>>(std::move(items));
    return x;
  }
  static Value other() { return Value(); }
};

// What a global does when BUILD or REDUCE calls it (LibTorch's unpickler, readGlobal()).
enum class Global {
  PopPushOther,     // pops its argument, pushes a value we need not know (a tensor, an object, a device, ...)
  RestoreTypeTag,   // pops (value, type) and pushes value: the one global that passes a value through
  ReplaceWithNone,  // collections.OrderedDict: the argument becomes None
  KeepArgument,     // __main__.IntList: retypes the list in place
  RebuildFromType,  // torch._tensor._rebuild_from_type_v2: calls the next global on its third argument
};

// Memo ids are sequential in what PyTorch writes; a huge one would make LibTorch allocate that many slots.
constexpr uint64_t kMaxMemoId = uint64_t{1} << 24;

const char* kQSchemes[] = {"per_tensor_affine", "per_channel_affine", "per_tensor_symmetric", "per_channel_symmetric",
                           "per_channel_affine_float_qparams"};

class Scanner {
 public:
  Scanner(const std::string& pickle, const std::function<int64_t(const std::string&)>& storageScalarType)
      : data_(pickle), storageScalarType_(storageScalarType) {}

  std::vector<StorageReference> run() {
    while (true) {
      const auto opcode = static_cast<unsigned char>(readByte());
      if (opcode == '.') return std::move(references_);  // STOP
      step(opcode);
    }
  }

 private:
  [[noreturn]] void fail(const std::string& what) const { throw PickleScanError(what + " at byte " + std::to_string(at_)); }

  const char* take(uint64_t n) {
    if (n > data_.size() - at_) fail("the pickle ends early");
    const char* p = data_.data() + at_;
    at_ += n;
    return p;
  }
  char readByte() { return *take(1); }
  uint64_t readUnsigned(int bytes) {
    const auto* p = reinterpret_cast<const unsigned char*>(take(static_cast<uint64_t>(bytes)));
    uint64_t v = 0;
    for (int i = bytes - 1; i >= 0; --i) v = (v << 8) | p[i];
    return v;
  }
  std::string readLine() {
    const char* start = data_.data() + at_;
    const void* newline = std::memchr(start, '\n', data_.size() - at_);
    if (!newline) fail("a GLOBAL name has no end");
    const size_t length = static_cast<const char*>(newline) - start;
    at_ += length + 1;
    return std::string(start, length);
  }

  Value pop() {
    if (stack_.empty()) fail("the stack is empty");
    Value v = std::move(stack_.back());
    stack_.pop_back();
    return v;
  }
  Value& top() {
    if (stack_.empty()) fail("the stack is empty");
    return stack_.back();
  }
  // The position of the innermost MARK, which must still lie within the stack.
  size_t mark(bool remove) {
    if (marks_.empty()) fail("no MARK");
    const size_t start = marks_.back();
    if (start > stack_.size()) fail("a MARK lies beyond the stack");
    if (remove) marks_.pop_back();
    return start;
  }
  void pushTuple(size_t count) {
    if (stack_.size() < count) fail("too few values for a tuple");
    std::vector<Value> items(std::make_move_iterator(stack_.end() - static_cast<std::ptrdiff_t>(count)), std::make_move_iterator(stack_.end()));
    stack_.resize(stack_.size() - count);
    stack_.push_back(Value::ofTuple(std::move(items)));
  }
  void memoize(uint64_t id) {
    if (stack_.empty()) fail("nothing to memoize");
    if (id > kMaxMemoId) fail("memo id " + std::to_string(id) + " is too large");
    if (id >= memo_.size()) memo_.resize(id + 1);
    memo_[id] = stack_.back();
  }
  void recall(uint64_t id) {
    if (id >= memo_.size()) fail("memo id " + std::to_string(id) + " was never stored");
    stack_.push_back(memo_[id]);
  }
  const std::vector<Value>& tupleItems(const Value& v, size_t atLeast, const char* what) {
    if (v.kind != Value::Kind::Tuple || v.items->size() < atLeast) fail(std::string(what) + " needs a tuple of at least " + std::to_string(atLeast));
    return *v.items;
  }

  void registerGlobal(Global g) {
    globals_.push_back(g);
    stack_.push_back(Value::ofInt(static_cast<int64_t>(globals_.size() - 1)));
  }

  void readGlobal(const std::string& module, const std::string& name) {
    if (skipGlobals_ > 0) {
      // After _rebuild_from_type_v2: the next global is read as usual, the one after stands for it.
      --skipGlobals_;
      if (skipGlobals_ == 0) {
        stack_.push_back(Value::ofInt(static_cast<int64_t>(globals_.size()) - 1));
        return;
      }
    }
    if (module == "__main__") {
      if (name == "TensorID") return registerGlobal(Global::PopPushOther);
      if (name == "IntList") return registerGlobal(Global::KeepArgument);
      fail("unknown global __main__." + name);
    }
    if (module == "torch.jit._pickle") {
      if (name == "restore_type_tag") return registerGlobal(Global::RestoreTypeTag);
      if (name == "build_tensor_from_id" || name == "build_intlist" || name == "build_tensorlist" || name == "build_doublelist" ||
          name == "build_boollist") {
        return registerGlobal(Global::PopPushOther);
      }
      fail("unknown global torch.jit._pickle." + name);
    }
    if (module == "torch._tensor" && name == "_rebuild_from_type_v2") {
      skipGlobals_ = 2;
      return registerGlobal(Global::RebuildFromType);
    }
    if (module == "collections" && name == "OrderedDict") return registerGlobal(Global::ReplaceWithNone);
    if (module == "torch") {
      if (name == "device") return registerGlobal(Global::PopPushOther);
      const int64_t scalarType = storageScalarType_(name);
      if (scalarType >= 0) {
        stack_.push_back(Value::ofInt(scalarType));
        return;
      }
      for (size_t q = 0; q < sizeof(kQSchemes) / sizeof(kQSchemes[0]); ++q) {
        if (name == kQSchemes[q]) {
          stack_.push_back(Value::ofInt(static_cast<int64_t>(q)));
          return;
        }
      }
      fail("unknown global torch." + name);
    }
    // torch._utils' tensor rebuilders, builtins.complex, classes and enums of the model's code, ...
    registerGlobal(Global::PopPushOther);
  }

  void call(Global g, size_t index, int depth = 0) {
    if (depth > 16) fail("tensor rebuilders nested too deeply");
    switch (g) {
      case Global::PopPushOther:
        pop();
        stack_.push_back(Value::other());
        return;
      case Global::RestoreTypeTag: {
        const Value arg = pop();
        stack_.push_back(tupleItems(arg, 2, "restore_type_tag")[0]);
        return;
      }
      case Global::ReplaceWithNone:
        top() = Value::other();
        return;
      case Global::KeepArgument:
        top();
        return;
      case Global::RebuildFromType: {
        const Value arg = pop();
        const auto& items = tupleItems(arg, 4, "_rebuild_from_type_v2");
        if (items[2].kind != Value::Kind::Tuple) fail("_rebuild_from_type_v2 needs a tuple of arguments");
        if (index + 1 >= globals_.size()) fail("_rebuild_from_type_v2 without a rebuild function");
        stack_.push_back(items[2]);
        call(globals_[index + 1], index + 1, depth + 1);
        return;
      }
    }
  }

  void persistentLoad() {
    const Value id = pop();
    const auto& args = tupleItems(id, 5, "a persistent id");
    if (args[0].kind != Value::Kind::Str || args[0].text != "storage") fail("a persistent id that is not a storage");
    if (args[1].kind != Value::Kind::Int || args[2].kind != Value::Kind::Str || args[3].kind != Value::Kind::Str ||
        args[4].kind != Value::Kind::Int) {
      fail("a storage reference that is not (type, key, location, numel)");
    }
    references_.push_back({args[1].integer, args[2].text, args[3].text, args[4].integer});
    stack_.push_back(Value::other());
  }

  void step(unsigned char opcode) {
    switch (opcode) {
      case 0x80:
        take(1);
        return;  // PROTO
      case 0x95:
        take(8);
        return;  // FRAME
      case '(':
        marks_.push_back(stack_.size());
        return;
      case ']':
      case '}':
      case 'N':
      case 0x88:
      case 0x89:
        stack_.push_back(Value::other());
        return;
      case ')':
        stack_.push_back(Value::ofTuple({}));
        return;
      case 'K':
        stack_.push_back(Value::ofInt(static_cast<int64_t>(readUnsigned(1))));
        return;
      case 'M':
        stack_.push_back(Value::ofInt(static_cast<int64_t>(readUnsigned(2))));
        return;
      case 'J':
        stack_.push_back(Value::ofInt(static_cast<int32_t>(readUnsigned(4))));
        return;
      case 0x8a: {  // LONG1: LibTorch reads only 8-byte ones
        if (readUnsigned(1) != 8) fail("a LONG1 of other than 8 bytes");
        stack_.push_back(Value::ofInt(static_cast<int64_t>(readUnsigned(8))));
        return;
      }
      case 'G':
        take(8);
        stack_.push_back(Value::other());
        return;  // BINFLOAT
      case 'X':
      case 'T': {
        const uint64_t n = readUnsigned(4);
        stack_.push_back(Value::ofStr(std::string(take(n), n)));
        return;
      }
      case 0x8c:
      case 'U': {
        const uint64_t n = readUnsigned(1);
        stack_.push_back(Value::ofStr(std::string(take(n), n)));
        return;
      }
      case 0x8d: {
        const uint64_t n = readUnsigned(8);
        stack_.push_back(Value::ofStr(std::string(take(n), n)));
        return;
      }
      case 'C':
        take(readUnsigned(1));
        stack_.push_back(Value::other());
        return;  // SHORT_BINBYTES
      case 'B':
        take(readUnsigned(4));
        stack_.push_back(Value::other());
        return;  // BINBYTES
      case 't':
        pushTuple(stack_.size() - mark(true));
        return;
      case 0x85:
        pushTuple(1);
        return;
      case 0x86:
        pushTuple(2);
        return;
      case 0x87:
        pushTuple(3);
        return;
      case 'l': {  // LIST
        const size_t start = mark(true);
        stack_.resize(start);
        stack_.push_back(Value::other());
        return;
      }
      case 'e': {  // APPENDS
        const size_t start = mark(true);
        if (start == 0) fail("APPENDS without a list");
        stack_.resize(start);
        return;
      }
      case 'a':  // APPEND
        if (stack_.size() < 2) fail("APPEND without a list");
        stack_.pop_back();
        return;
      case 'd':
      case 'u': {  // DICT, SETITEMS: key/value pairs down to the mark
        const size_t start = mark(true);
        if ((stack_.size() - start) % 2 != 0) fail("a dict with a key but no value");
        if (opcode == 'u' && start == 0) fail("SETITEMS without a dict");
        stack_.resize(start);
        if (opcode == 'd') stack_.push_back(Value::other());
        return;
      }
      case 's':  // SETITEM
        if (stack_.size() < 3) fail("SETITEM without a dict, key and value");
        stack_.resize(stack_.size() - 2);
        return;
      case 'q':
        memoize(readUnsigned(1));
        return;
      case 'r':
        memoize(readUnsigned(4));
        return;
      case 0x94:
        memoize(memo_.size());
        return;  // MEMOIZE
      case 'h':
        recall(readUnsigned(1));
        return;
      case 'j':
        recall(readUnsigned(4));
        return;
      case 'c': {  // GLOBAL
        const std::string module = readLine();
        const std::string name = readLine();
        readGlobal(module, name);
        return;
      }
      case 0x81:
        pop();
        return;  // NEWOBJ: the call happens at BUILD/REDUCE
      case 'b':
      case 'R': {  // BUILD, REDUCE: <global index> <argument>
        if (stack_.size() < 2) fail("a call without a function and an argument");
        std::swap(stack_[stack_.size() - 1], stack_[stack_.size() - 2]);
        const Value index = pop();
        if (index.kind != Value::Kind::Int || index.integer < 0 || static_cast<uint64_t>(index.integer) >= globals_.size()) {
          fail("a call of something that is not a global");
        }
        call(globals_[static_cast<size_t>(index.integer)], static_cast<size_t>(index.integer));
        return;
      }
      case 'Q':
        persistentLoad();
        return;  // BINPERSID
      case '0':
        pop();
        return;  // POP
      case '1':
        stack_.resize(mark(true));
        return;  // POP_MARK
      case '2':
        stack_.push_back(top());
        return;  // DUP
      default:
        fail("opcode " + std::to_string(opcode) + ", which LibTorch's unpickler does not read");
    }
  }

  const std::string& data_;
  const std::function<int64_t(const std::string&)>& storageScalarType_;
  uint64_t at_ = 0;
  std::vector<Value> stack_;
  std::vector<size_t> marks_;
  std::vector<Value> memo_;
  std::vector<Global> globals_;
  int skipGlobals_ = 0;
  std::vector<StorageReference> references_;
};

}  // namespace

std::vector<StorageReference> scanStorageReferences(const std::string& pickle, const std::function<int64_t(const std::string&)>& storageScalarType) {
  return Scanner(pickle, storageScalarType).run();
}

}  // namespace vbp
