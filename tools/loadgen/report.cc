#include "tools/loadgen/report.h"

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "common/json.h"

namespace jetstream::loadgen {
namespace {

double Ms(double micros) { return micros / 1000.0; }

void WriteLatency(JsonWriter& w, const char* key, const LatencySummary& s) {
  w.Key(key);
  w.StartObject();
  w.Key("count");
  w.Uint64(s.count);
  w.Key("p50");
  w.Number(s.p50_ms);
  w.Key("p90");
  w.Number(s.p90_ms);
  w.Key("p99");
  w.Number(s.p99_ms);
  w.Key("p999");
  w.Number(s.p999_ms);
  w.Key("max");
  w.Number(s.max_ms);
  w.Key("mean");
  w.Number(s.mean_ms);
  w.EndObject();
}

void WriteRate(JsonWriter& w, const char* key, uint64_t count, double per_s) {
  w.Key(key);
  w.StartObject();
  w.Key("count");
  w.Uint64(count);
  w.Key("per_s");
  w.Number(per_s);
  w.EndObject();
}

// Rounds to three decimals so the JSON stays readable.
double Round3(double v) {
  return static_cast<int64_t>(v * 1000 + (v < 0 ? -0.5 : 0.5)) / 1000.0;
}

std::string LatencyLine(const LatencySummary& s) {
  if (s.count == 0) return "";
  return absl::StrFormat(
      "   latency ms  p50 %.3f  p90 %.3f  p99 %.3f  p99.9 %.3f  max %.3f",
      s.p50_ms, s.p90_ms, s.p99_ms, s.p999_ms, s.max_ms);
}

}  // namespace

LatencySummary Summarize(const LatencyHistogram& histogram) {
  LatencySummary s;
  s.count = histogram.count();
  s.p50_ms = Round3(Ms(histogram.Percentile(0.50)));
  s.p90_ms = Round3(Ms(histogram.Percentile(0.90)));
  s.p99_ms = Round3(Ms(histogram.Percentile(0.99)));
  s.p999_ms = Round3(Ms(histogram.Percentile(0.999)));
  s.max_ms = Round3(Ms(static_cast<double>(histogram.max())));
  s.mean_ms = Round3(Ms(histogram.mean()));
  return s;
}

std::string ReportJson(const Report& r) {
  rapidjson::StringBuffer buffer;
  JsonWriter w(buffer);
  w.StartObject();
  w.Key("scenario");
  w.String(r.scenario);
  w.Key("url");
  w.String(r.url);
  w.Key("scope");
  w.String(r.scope);
  w.Key("clients");
  w.Uint64(static_cast<uint64_t>(r.clients));
  w.Key("threads");
  w.Uint64(static_cast<uint64_t>(r.threads));
  w.Key("rate");
  w.Number(r.rate);
  w.Key("ready");
  w.Uint64(static_cast<uint64_t>(r.ready));
  w.Key("failed");
  w.Uint64(static_cast<uint64_t>(r.failed));
  w.Key("setup_s");
  w.Number(Round3(r.setup_seconds));
  w.Key("window_s");
  w.Number(Round3(r.window_seconds));
  w.Key("load_average");
  w.StartObject();
  w.Key("start");
  w.Number(r.load_start);
  w.Key("end");
  w.Number(r.load_end);
  w.EndObject();
  w.Key("reply_unit");
  w.String(r.reply_unit);
  WriteRate(w, "replies", r.replies, Round3(r.replies_per_s));
  WriteLatency(w, "reply_latency_ms", r.reply_latency);
  WriteRate(w, "deliveries", r.deliveries, Round3(r.deliveries_per_s));
  WriteLatency(w, "delivery_latency_ms", r.delivery_latency);
  WriteLatency(w, "delivery_latency_first_half_ms",
               r.delivery_latency_first_half);
  WriteLatency(w, "delivery_latency_second_half_ms",
               r.delivery_latency_second_half);
  WriteRate(w, "sessions", r.sessions, Round3(r.sessions_per_s));
  WriteLatency(w, "setup_latency_ms", r.setup_latency);
  w.Key("errors");
  w.StartObject();
  w.Key("fragment");
  w.Uint64(r.fragment_errors);
  w.Key("protocol");
  w.Uint64(r.protocol_errors);
  w.Key("disconnects");
  w.Uint64(r.disconnects);
  w.Key("setup");
  w.Uint64(static_cast<uint64_t>(r.failed));
  w.EndObject();
  // By process name: {"loadgen": x, "gateway": y, ...}.
  auto by_name = [&](const char* key, double ProcessFigures::*field) {
    w.Key(key);
    w.StartObject();
    w.Key("loadgen");
    w.Number(Round3(r.loadgen.*field));
    for (const ProcessFigures& p : r.processes) {
      w.Key(p.name);
      w.Number(Round3(p.*field));
    }
    w.EndObject();
  };
  by_name("cpu_percent", &ProcessFigures::cpu_percent);
  by_name("cpu_system_percent", &ProcessFigures::cpu_system_percent);
  by_name("context_switches_per_s", &ProcessFigures::context_switches_per_s);
  w.Key("processes");
  w.StartArray();
  for (const ProcessFigures& p : r.processes) {
    w.StartObject();
    w.Key("name");
    w.String(p.name);
    w.Key("pid");
    w.Uint64(static_cast<uint64_t>(p.pid));
    w.Key("rss_before_kb");
    w.Number(static_cast<double>(p.rss_before_kb));
    w.Key("rss_after_kb");
    w.Number(static_cast<double>(p.rss_after_kb));
    w.EndObject();
  }
  w.EndArray();
  w.Key("bytes_per_session");
  w.Number(Round3(r.bytes_per_session));
  w.Key("command_line");
  w.String(r.command_line);
  w.EndObject();
  return std::string(buffer.GetString(), buffer.GetSize());
}

std::string ReportTable(const Report& r) {
  std::string out = absl::StrFormat(
      "%-14s %s  %d clients on %s%s, %d thread(s)\n", "scenario", r.scenario,
      r.clients, r.url, r.scope.empty() ? "" : absl::StrCat(" scope ", r.scope),
      r.threads);
  if (r.scenario == "storm" || r.scenario == "echo_storm") {
    absl::StrAppendFormat(&out,
                          "%-14s %d set up, %d failed over the run; "
                          "window %.2f s\n",
                          "connections", r.ready, r.failed, r.window_seconds);
  } else {
    absl::StrAppendFormat(&out,
                          "%-14s %d running, %d failed, set up in %.2f s; "
                          "window %.2f s\n",
                          "connections", r.ready, r.failed, r.setup_seconds,
                          r.window_seconds);
  }
  if (r.replies > 0 || r.reply_latency.count > 0) {
    absl::StrAppendFormat(&out, "%-14s %12.0f%s\n",
                          absl::StrCat(r.reply_unit, "/s"), r.replies_per_s,
                          LatencyLine(r.reply_latency));
  }
  if (r.deliveries > 0) {
    absl::StrAppendFormat(&out, "%-14s %12.0f%s\n", "deliveries/s",
                          r.deliveries_per_s, LatencyLine(r.delivery_latency));
  }
  if (r.sessions > 0) {
    absl::StrAppendFormat(&out, "%-14s %12.0f%s\n", "sessions/s",
                          r.sessions_per_s, LatencyLine(r.setup_latency));
  }
  std::string cpu, switches;
  auto add_cpu = [&](const ProcessFigures& p) {
    if (p.cpu_percent < 0) return;
    absl::StrAppendFormat(&cpu, "  %s %.0f (kernel %.0f)", p.name,
                          p.cpu_percent, p.cpu_system_percent);
    absl::StrAppendFormat(&switches, "  %s %.0f", p.name,
                          p.context_switches_per_s);
  };
  add_cpu(r.loadgen);
  for (const ProcessFigures& p : r.processes) add_cpu(p);
  absl::StrAppendFormat(&out, "%-14s%s\n", "cpu % of core", cpu);
  absl::StrAppendFormat(&out, "%-14s%s\n", "switches/s", switches);
  if (r.load_start >= 0 && r.load_end >= 0) {
    absl::StrAppendFormat(&out, "%-14s %.2f -> %.2f (1-minute load average)\n",
                          "machine load", r.load_start, r.load_end);
  }
  for (const ProcessFigures& p : r.processes) {
    if (p.rss_before_kb < 0 || p.rss_after_kb < 0) continue;
    absl::StrAppendFormat(&out, "%-14s %s: %d KiB -> %d KiB\n", "resident",
                          p.name, p.rss_before_kb, p.rss_after_kb);
  }
  if (r.bytes_per_session >= 0) {
    absl::StrAppendFormat(&out, "%-14s %.0f bytes (%.2f KiB), all processes\n",
                          "per session", r.bytes_per_session,
                          r.bytes_per_session / 1024.0);
  }
  absl::StrAppendFormat(&out,
                        "%-14s fragment %d  protocol %d  disconnects %d  "
                        "setup %d\n",
                        "errors", r.fragment_errors, r.protocol_errors,
                        r.disconnects, r.failed);
  return out;
}

}  // namespace jetstream::loadgen
