// Benchmarks of the sync engine's hot paths (Google Benchmark).
//
//   bazel run -c opt //syncservice/engine:scope_benchmark   (or tools/bench.sh)
//
// Targets (one core):
//   BM_ApplySingleChange   >= 2,000,000 fragments/s
//   BM_DecodeApplyEncode   >=   300,000 changesets/s
//   BM_ScopeStateToJson    <= 10 ms per state of 10,000 objects

#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "benchmark/benchmark.h"
#include "common/fragment_json.h"
#include "common/json.h"
#include "syncservice/engine/schema_loader.h"
#include "syncservice/engine/scope.h"

namespace jetstream {
namespace {

constexpr int kShapes = 10000;

// The demo Canvas model, inline so the benchmark runs from any directory.
constexpr char kCanvasSchema[] = R"({
  "models": {
    "Canvas": {"properties": {"name": "String", "shapes": "[Shape]"}},
    "Shape": {"properties": {"x": "Number", "y": "Number", "width": "Number",
                             "height": "Number", "color": "Number"}}
  }
})";

Uuid ShapeUuid(int n) {
  return *Uuid::Parse(absl::StrFormat("00000000-0000-4000-8000-%012x", n + 2));
}

void Check(bool ok, const char* what) {
  if (!ok) {
    std::fprintf(stderr, "benchmark setup failed: %s\n", what);
    std::abort();
  }
}

// A Canvas scope holding `shapes` Shape objects with all five properties.
std::unique_ptr<Scope> CanvasWithShapes(int shapes) {
  auto schema = ParseSchema(kCanvasSchema, "kCanvasSchema");
  Check(schema.ok(), "schema");
  auto scope = Scope::Create(
      *schema, "Canvas", *Uuid::Parse("00000000-0000-4000-8000-000000000001"));
  Check(scope.ok(), "scope");
  Changeset changeset;
  Value::Array refs;
  for (int i = 0; i < shapes; ++i) {
    SyncFragment f;
    f.type = FragmentType::kAdd;
    f.uuid = ShapeUuid(i);
    f.cls_name = "Shape";
    f.properties = {{"x", Value::Number(i % 1000)},
                    {"y", Value::Number(i / 1000)},
                    {"width", Value::Number(100)},
                    {"height", Value::Number(50.5)},
                    {"color", Value::Number(4279308287.0)}};
    changeset.fragments.push_back(std::move(f));
    refs.push_back(Value::String(ShapeUuid(i).ToString()));
  }
  SyncFragment root;
  root.type = FragmentType::kChange;
  root.uuid = (*scope)->root().uuid();
  root.cls_name = "Canvas";
  root.properties = {{"name", Value::String("benchmark")},
                     {"shapes", Value::ArrayOf(std::move(refs))}};
  changeset.fragments.push_back(std::move(root));
  ChangesetResult r = (*scope)->Apply(std::move(changeset));
  Check(r.all_ok() && (*scope)->size() == static_cast<size_t>(shapes) + 1,
        "populate");
  return *std::move(scope);
}

// Apply() of `change` fragments {"x": i}, state.range(0) per changeset. The
// fragments are built inside the loop, as a decoder would hand them over.
void BM_ApplySingleChange(benchmark::State& state) {
  std::unique_ptr<Scope> scope = CanvasWithShapes(kShapes);
  const int per_changeset = static_cast<int>(state.range(0));
  std::vector<Uuid> ids;
  for (int i = 0; i < kShapes; ++i) ids.push_back(ShapeUuid(i));
  int next = 0;
  double x = 0;
  for (auto _ : state) {
    Changeset changeset;
    changeset.fragments.reserve(per_changeset);
    for (int k = 0; k < per_changeset; ++k) {
      SyncFragment f;
      f.type = FragmentType::kChange;
      f.uuid = ids[next];
      f.cls_name = "Shape";
      f.properties.emplace_back("x", Value::Number(x));
      changeset.fragments.push_back(std::move(f));
      if (++next == kShapes) next = 0;
      x += 1;
    }
    ChangesetResult r = scope->Apply(std::move(changeset));
    benchmark::DoNotOptimize(r);
  }
  Check(scope->CheckInvariants().ok(), "invariants after the run");
  state.SetItemsProcessed(state.iterations() * per_changeset);
  state.counters["fragments/changeset"] = per_changeset;
}
BENCHMARK(BM_ApplySingleChange)->Arg(1)->Arg(64);

// The path of one client ScopeSync through the engine: the fragments JSON is
// decoded, applied, the replies encoded (as fragmentReplies) and the applied
// fragments encoded for the broadcast.
void BM_DecodeApplyEncode(benchmark::State& state) {
  std::unique_ptr<Scope> scope = CanvasWithShapes(kShapes);
  constexpr int kTexts = 4096;
  std::vector<std::string> texts;
  for (int i = 0; i < kTexts; ++i) {
    texts.push_back(absl::StrCat(R"([{"type":"change","uuid":")",
                                 ShapeUuid(i * 7 % kShapes).ToString(),
                                 R"(","clsName":"Shape","properties":{"x":)", i,
                                 R"(,"y":)", i * 0.5, "}}]"));
  }
  size_t bytes = 0;
  int next = 0;
  for (auto _ : state) {
    const std::string& text = texts[next];
    if (++next == kTexts) next = 0;
    absl::StatusOr<std::vector<SyncFragment>> fragments =
        ParseFragmentsJson(text);
    ChangesetResult r = scope->Apply(Changeset{*std::move(fragments)});

    rapidjson::StringBuffer buffer;
    JsonWriter writer(buffer);
    writer.StartArray();
    for (const FragmentReply& reply : r.replies)
      WriteFragmentReply(writer, reply);
    writer.EndArray();
    std::string broadcast = EncodeFragments(r.applied);
    bytes += text.size() + buffer.GetSize() + broadcast.size();
    benchmark::DoNotOptimize(broadcast);
    benchmark::DoNotOptimize(buffer.GetString());
  }
  state.SetItemsProcessed(state.iterations());
  state.SetBytesProcessed(bytes);
}
BENCHMARK(BM_DecodeApplyEncode);

// A ScopeState of 10,001 objects (root + 10,000 shapes) to JSON, straight
// from the objects (range 0) or through State().fragments (range 1).
void BM_ScopeStateToJson(benchmark::State& state) {
  std::unique_ptr<Scope> scope = CanvasWithShapes(kShapes);
  const bool via_fragments = state.range(0) == 1;
  size_t bytes = 0;
  for (auto _ : state) {
    if (via_fragments) {
      std::string json = EncodeFragments(scope->State().fragments);
      bytes += json.size();
      benchmark::DoNotOptimize(json);
    } else {
      rapidjson::StringBuffer buffer;
      JsonWriter writer(buffer);
      scope->WriteStateFragments(writer);
      bytes += buffer.GetSize();
      benchmark::DoNotOptimize(buffer.GetString());
    }
  }
  state.SetLabel(via_fragments ? "EncodeFragments(State().fragments)"
                               : "WriteStateFragments");
  state.SetItemsProcessed(state.iterations() * scope->size());
  state.SetBytesProcessed(bytes);
}
BENCHMARK(BM_ScopeStateToJson)->Arg(0)->Arg(1)->Unit(benchmark::kMillisecond);

}  // namespace
}  // namespace jetstream
