#include "cli/indicator_commands.h"

#include <algorithm>
#include <cctype>
#include <fstream>
#include <memory>
#include <optional>
#include <sstream>

#include "cli/table.h"

namespace quell::cli {
namespace {

using nlohmann::json;

constexpr size_t kPerCall = 500;  // the API's limit for import and BatchDelete

std::string Lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return s;
}

std::string Trim(std::string s) {
  size_t b = s.find_first_not_of(" \t\r\n");
  size_t e = s.find_last_not_of(" \t\r\n");
  return b == std::string::npos ? "" : s.substr(b, e - b + 1);
}

struct CsvRecord {
  int line = 0;
  std::vector<std::string> cells;
};

// RFC 4180 records; an error names the line of an unterminated quote.
std::vector<CsvRecord> SplitCsv(std::string_view text, std::vector<std::string>& errors) {
  std::vector<CsvRecord> records;
  CsvRecord record{.line = 1};
  std::string cell;
  bool quoted = false, cell_started_quoted = false;
  int line = 1;
  auto end_cell = [&] {
    record.cells.push_back(cell_started_quoted ? cell : Trim(cell));
    cell.clear();
    cell_started_quoted = false;
  };
  auto end_record = [&] {
    end_cell();
    bool blank = std::all_of(record.cells.begin(), record.cells.end(),
                             [](const std::string& c) { return c.empty(); });
    if (!blank) records.push_back(std::move(record));
    record = CsvRecord{.line = line + 1};
  };
  for (size_t i = 0; i < text.size(); ++i) {
    char c = text[i];
    if (quoted) {
      if (c == '"' && i + 1 < text.size() && text[i + 1] == '"') {
        cell += '"';
        ++i;
      } else if (c == '"') {
        quoted = false;
      } else {
        if (c == '\n') ++line;
        cell += c;
      }
    } else if (c == '"' && Trim(cell).empty()) {
      quoted = true;
      cell_started_quoted = true;
      cell.clear();
    } else if (c == ',') {
      end_cell();
    } else if (c == '\n') {
      end_record();
      ++line;
    } else if (c != '\r') {
      cell += c;
    }
  }
  if (quoted) {
    errors.push_back("line " + std::to_string(record.line) + ": a quoted cell is not closed");
    return {};
  }
  if (!cell.empty() || !record.cells.empty()) end_record();
  return records;
}

}  // namespace

IndicatorFile ParseIndicatorCsv(std::string_view text) {
  IndicatorFile file;
  if (text.size() >= 3 && text.substr(0, 3) == "\xEF\xBB\xBF") text.remove_prefix(3);  // BOM
  std::vector<CsvRecord> records = SplitCsv(text, file.errors);
  if (!file.errors.empty()) return file;
  if (records.empty()) {
    file.errors.push_back("line 1: the file is empty; the first line must name the columns");
    return file;
  }
  static const std::vector<std::string> kColumns = {
      "IndicatorType", "IndicatorValue", "ExpirationTime",     "Action",
      "Severity",      "Title",          "Description",        "RecommendedActions",
      "RbacGroups",    "GenerateAlert"};
  std::vector<std::string> header;  // API field per column
  for (const std::string& name : records.front().cells) {
    auto it = std::find_if(kColumns.begin(), kColumns.end(),
                           [&](const std::string& c) { return Lower(c) == Lower(Trim(name)); });
    if (it == kColumns.end()) {
      file.errors.push_back("line " + std::to_string(records.front().line) + ": unknown column '" +
                            name + "' (columns: IndicatorType, IndicatorValue, ExpirationTime, "
                            "Action, Severity, Title, Description, RecommendedActions, "
                            "RbacGroups, GenerateAlert)");
      continue;
    }
    header.push_back(*it);
  }
  for (const char* required : {"IndicatorType", "IndicatorValue", "Action", "Title"}) {
    if (std::find(header.begin(), header.end(), required) == header.end()) {
      file.errors.push_back("line " + std::to_string(records.front().line) +
                            ": the header has no " + required + " column");
    }
  }
  if (!file.errors.empty()) return file;
  for (size_t r = 1; r < records.size(); ++r) {
    const CsvRecord& rec = records[r];
    if (rec.cells.size() > header.size()) {
      file.errors.push_back("line " + std::to_string(rec.line) + ": " +
                            std::to_string(rec.cells.size()) + " cells, but the header has " +
                            std::to_string(header.size()) + " columns");
      continue;
    }
    json item = json::object();
    for (size_t c = 0; c < rec.cells.size(); ++c) {
      if (rec.cells[c].empty()) continue;
      if (header[c] == "RbacGroups") {
        json groups = json::array();
        std::stringstream parts(rec.cells[c]);
        for (std::string g; std::getline(parts, g, ';');) {
          if (!Trim(g).empty()) groups.push_back(Trim(g));
        }
        item["rbacGroupNames"] = groups;
      } else {
        std::string field = header[c];
        field[0] = static_cast<char>(std::tolower(static_cast<unsigned char>(field[0])));
        item[field] = rec.cells[c];
      }
    }
    file.indicators.push_back(std::move(item));
    file.lines.push_back(rec.line);
  }
  if (file.indicators.empty() && file.errors.empty()) {
    file.errors.push_back("the file has a header but no indicators");
  }
  return file;
}

IndicatorFile ParseIndicatorJson(std::string_view text) {
  IndicatorFile file;
  json parsed = json::parse(text, nullptr, false);
  if (parsed.is_discarded()) {
    file.errors.push_back("the file is not valid JSON");
    return file;
  }
  const json* list = &parsed;
  if (parsed.is_object()) {
    auto it = parsed.find("Indicators");
    if (it == parsed.end()) it = parsed.find("indicators");
    if (it == parsed.end()) {
      file.errors.push_back("a JSON file must be {\"Indicators\": [...]} or a list");
      return file;
    }
    list = &*it;
  }
  if (!list->is_array()) {
    file.errors.push_back("Indicators must be a list");
    return file;
  }
  for (size_t i = 0; i < list->size(); ++i) {
    if (!(*list)[i].is_object()) {
      file.errors.push_back("item " + std::to_string(i + 1) + ": not a JSON object");
      continue;
    }
    file.indicators.push_back((*list)[i]);
    file.lines.push_back(0);
  }
  if (file.indicators.empty() && file.errors.empty()) file.errors.push_back("no indicators");
  return file;
}

IndicatorFile ParseIndicatorFile(std::string_view text) {
  size_t first = text.find_first_not_of(" \t\r\n\xEF\xBB\xBF");
  if (first != std::string_view::npos && (text[first] == '{' || text[first] == '[')) {
    return ParseIndicatorJson(text);
  }
  return ParseIndicatorCsv(text);
}

namespace {

struct IndicatorFlags {
  struct {
    std::string type, value, action, title, severity, description, recommended, expires;
    bool generate_alert = false;
    std::vector<std::string> groups;
  } add;
  struct {
    std::string type, action, value;
    int top = 100;
  } list;
  std::vector<std::string> rm_ids;
  std::string import_file;
  std::string machine, group;
};

std::string Groups(const json& i) {
  std::string out;
  if (i.contains("rbacGroupNames") && i["rbacGroupNames"].is_array()) {
    for (const auto& g : i["rbacGroupNames"]) {
      if (g.is_string()) out += (out.empty() ? "" : ",") + g.get<std::string>();
    }
  }
  return out.empty() ? "(all)" : out;
}

}  // namespace

void AddIndicatorCommands(CLI::App& app, CliContext& ctx, int& exit_code) {
  auto flags = std::make_shared<IndicatorFlags>();
  auto* indicators =
      app.add_subcommand("indicators", "Block or allow files, addresses and domains fleet-wide")
          ->require_subcommand(1);

  auto* add = indicators->add_subcommand("add", "Submit an indicator (updates an existing one)");
  add->add_option("--type", flags->add.type,
                  "FileSha1, FileSha256, FileMd5, CertificateThumbprint, IpAddress, DomainName "
                  "or Url")
      ->required();
  add->add_option("--value", flags->add.value, "The hash, address (CIDR allowed), domain or URL")
      ->required();
  add->add_option("--action", flags->add.action,
                  "Allowed, Audit, Warn (acts as Audit), Block or BlockAndRemediate")
      ->required();
  add->add_option("--title", flags->add.title, "Title")->required();
  add->add_option("--severity", flags->add.severity, "Informational, Low, Medium or High");
  add->add_option("--description", flags->add.description, "Description");
  add->add_option("--recommended-actions", flags->add.recommended, "Recommended actions");
  add->add_option("--expires", flags->add.expires, "Expiration, UTC: 2026-12-31T23:59:59Z");
  add->add_flag("--generate-alert", flags->add.generate_alert,
                "Raise an alert on a hit (required for Audit)");
  add->add_option("--group", flags->add.groups,
                  "Device group it applies to (repeat; none: every device)");
  add->callback([&ctx, &exit_code, flags] {
    const auto& f = flags->add;
    json body = {{"indicatorType", f.type}, {"indicatorValue", f.value},
                 {"action", f.action},      {"title", f.title},
                 {"generateAlert", f.generate_alert}};
    if (!f.severity.empty()) body["severity"] = f.severity;
    if (!f.description.empty()) body["description"] = f.description;
    if (!f.recommended.empty()) body["recommendedActions"] = f.recommended;
    if (!f.expires.empty()) body["expirationTime"] = f.expires;
    if (!f.groups.empty()) body["rbacGroupNames"] = f.groups;
    CallResult r = CallApi(ctx, "POST", "/api/indicators", body);
    if ((exit_code = r.exit_code) != 0) return;
    if (PrintJsonIfAsked(ctx, r.body)) return;
    ctx.out << "indicator " << Field(r.body, "id") << ": " << Field(r.body, "action") << " "
            << Field(r.body, "indicatorType") << " " << Field(r.body, "indicatorValue") << "\n";
  });

  auto* list = indicators->add_subcommand("list", "List indicators");
  list->add_option("--type", flags->list.type, "Only this indicatorType");
  list->add_option("--action", flags->list.action, "Only this action");
  list->add_option("--value", flags->list.value, "Only this value");
  list->add_option("--top", flags->list.top, "How many")
      ->capture_default_str()
      ->check(CLI::Range(1, 10000));
  list->callback([&ctx, &exit_code, flags] {
    const auto& f = flags->list;
    std::string target = "/api/indicators?$top=" + std::to_string(f.top) +
                         ODataFilterParameter({{"indicatorType", f.type},
                                               {"action", f.action},
                                               {"indicatorValue", f.value}});
    CallResult r = CallApi(ctx, "GET", target);
    if ((exit_code = r.exit_code) != 0) return;
    if (PrintJsonIfAsked(ctx, r.body)) return;
    std::vector<std::vector<std::string>> rows;
    for (const auto& i : r.body["value"]) {
      rows.push_back({Field(i, "id"), Field(i, "indicatorType"), Field(i, "indicatorValue"),
                      Field(i, "action"), Field(i, "severity"), Groups(i),
                      Field(i, "expirationTime"), Field(i, "title")});
    }
    ctx.out << RenderTable(
        {"ID", "TYPE", "VALUE", "ACTION", "SEVERITY", "GROUPS", "EXPIRES", "TITLE"}, rows);
  });

  auto* rm = indicators->add_subcommand("rm", "Delete indicators by id");
  rm->add_option("ids", flags->rm_ids, "Indicator ids")->required();
  rm->callback([&ctx, &exit_code, flags] {
    const auto& ids = flags->rm_ids;
    if (ids.size() == 1) {
      CallResult r = CallApi(ctx, "DELETE", "/api/indicators/" + UrlEncode(ids.front()));
      if ((exit_code = r.exit_code) != 0) return;
    } else {
      for (size_t start = 0; start < ids.size(); start += kPerCall) {
        json chunk(std::vector<std::string>(ids.begin() + static_cast<long>(start),
                                            ids.begin() + static_cast<long>(std::min(ids.size(), start + kPerCall))));
        CallResult r = CallApi(ctx, "POST", "/api/indicators/BatchDelete", {{"IndicatorIds", chunk}});
        if ((exit_code = r.exit_code) != 0) return;
      }
    }
    ctx.out << "deleted " << ids.size() << " indicator(s)\n";
  });

  auto* import = indicators->add_subcommand(
      "import", "Import indicators from a CSV file (Defender's template) or a JSON file");
  import->add_option("file", flags->import_file, "CSV or JSON file")->required();
  import->callback([&ctx, &exit_code, flags] {
    std::ifstream in(flags->import_file, std::ios::binary);
    if (!in) {
      ctx.err << "error: cannot read " << flags->import_file << "\n";
      exit_code = kExitApiError;
      return;
    }
    std::stringstream content;
    content << in.rdbuf();
    IndicatorFile file = ParseIndicatorFile(content.str());
    if (!file.errors.empty()) {
      for (const std::string& e : file.errors) ctx.err << flags->import_file << ": " << e << "\n";
      ctx.err << "error: nothing was imported\n";
      exit_code = kExitApiError;
      return;
    }
    size_t imported = 0, failed = 0;
    json all = json::array();
    for (size_t start = 0; start < file.indicators.size(); start += kPerCall) {
      size_t end = std::min(file.indicators.size(), start + kPerCall);
      json batch(std::vector<json>(file.indicators.begin() + static_cast<long>(start),
                                   file.indicators.begin() + static_cast<long>(end)));
      CallResult r = CallApi(ctx, "POST", "/api/indicators/import", {{"Indicators", batch}});
      if ((exit_code = r.exit_code) != 0) {
        ctx.err << "error: stopped after " << imported << " imported indicator(s)\n";
        return;
      }
      const json& value = r.body["value"];
      for (size_t i = 0; i < value.size(); ++i) {
        all.push_back(value[i]);
        if (!value[i].value("isFailed", false)) {
          ++imported;
          continue;
        }
        ++failed;
        size_t n = start + i;
        std::string where = file.lines[n] > 0 ? "line " + std::to_string(file.lines[n])
                                              : "item " + std::to_string(n + 1);
        ctx.err << flags->import_file << ": " << where << ": " << Field(value[i], "failureReason")
                << "\n";
      }
    }
    if (PrintJsonIfAsked(ctx, {{"value", all}})) {
    } else {
      ctx.out << "imported " << imported << " indicator(s)";
      if (failed > 0) ctx.out << ", " << failed << " failed";
      ctx.out << "\n";
    }
    if (failed > 0) exit_code = kExitApiError;
  });

  CLI::App* machine = app.get_subcommand("machine");
  auto* set_group = machine->add_subcommand(
      "set-group", "Put a device into a device group (decides which indicators apply)");
  set_group->add_option("machine", flags->machine, "Machine id or computer name")->required();
  set_group->add_option("group", flags->group, "Device group name (\"\" for none)")->required();
  set_group->callback([&ctx, &exit_code, flags] {
    std::string id = ResolveMachineId(ctx, flags->machine);
    if (id.empty()) {
      exit_code = kExitApiError;
      return;
    }
    CallResult r = CallApi(ctx, "PATCH", "/api/machines/" + UrlEncode(id),
                           {{"rbacGroupName", flags->group}});
    if ((exit_code = r.exit_code) != 0) return;
    if (PrintJsonIfAsked(ctx, r.body)) return;
    ctx.out << "machine " << id << " is now in group '" << Field(r.body, "rbacGroupName") << "'\n";
  });
}

}  // namespace quell::cli
