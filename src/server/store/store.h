// The server's persistent state behind one interface. Implementations: SQLite (embedded,
// the default; sqlite/) and, later, PostgreSQL. Nothing here names an implementation type,
// so callers and the conformance suite (store_conformance_test.cc) work with either.
//
// Thread-safety: every method may be called from any thread concurrently.
// Durability: a method that returns OK has committed its change.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/clock.h"
#include "common/status.h"

namespace quell::server {

// ---- devices ---------------------------------------------------------------------------

enum class IsolationState { kNotIsolated, kFull, kSelective };

struct Device {
  std::string id;                 // UUID, also the CN of the device certificate
  std::string computer_dns_name;
  std::string os_platform;        // "Linux"
  std::string os_version;         // PRETTY_NAME
  std::string os_id;              // "debian"
  std::string kernel_version;
  std::string architecture;
  std::string agent_version;
  std::vector<std::string> ip_addresses;
  std::string last_ip_address;    // first of ip_addresses at the last inventory
  std::string rbac_group_name;
  UnixMillis first_seen = 0;
  UnixMillis last_seen = 0;       // last hello or heartbeat
  std::string cert_serial_hex;    // serial of the device certificate in force
  bool offboarded = false;        // certificate revoked; Connect refused
  IsolationState isolation = IsolationState::kNotIsolated;

  friend bool operator==(const Device&, const Device&) = default;
};

// ---- tokens ----------------------------------------------------------------------------

enum class Role { kViewer, kResponder, kAdmin };  // ordered: each includes the ones before

struct ApiToken {
  std::string id;
  std::string name;        // who or what uses it; recorded as the requestor of actions
  Role role = Role::kViewer;
  std::string secret_sha256;  // only the hash is stored
  UnixMillis created = 0;
  bool revoked = false;

  friend bool operator==(const ApiToken&, const ApiToken&) = default;
};

struct EnrollmentToken {
  std::string id;
  std::string secret_sha256;
  int uses_left = 1;
  UnixMillis expires = 0;
  UnixMillis created = 0;

  friend bool operator==(const EnrollmentToken&, const EnrollmentToken&) = default;
};

// ---- actions ---------------------------------------------------------------------------

enum class ActionStatus { kPending, kInProgress, kSucceeded, kFailed, kTimeOut, kCancelled };

struct MachineAction {
  std::string id;                 // UUID
  std::string type;               // "Isolate", "Unisolate", ...
  std::string scope;              // "Full"/"Selective" for isolation; empty when none
  std::string requestor;
  std::string requestor_comment;
  std::string external_id;
  std::string request_source;     // "PublicApi", "Cli", ...
  std::string title;
  ActionStatus status = ActionStatus::kPending;
  std::string machine_id;
  std::string computer_dns_name;
  UnixMillis creation_time = 0;
  UnixMillis last_update_time = 0;
  UnixMillis expiration_time = 0;          // still Pending/InProgress then -> TimeOut
  std::optional<UnixMillis> cancellation_time;
  std::string cancellation_requestor;
  std::string cancellation_comment;
  std::string parameters_json = "{}";      // sent to the agent
  std::string result_json = "{}";         // reported by the agent
  std::string status_message;              // last progress or failure message
  uint32_t progress_percent = 0;

  friend bool operator==(const MachineAction&, const MachineAction&) = default;
};

struct ActionFilter {
  std::optional<ActionStatus> status;
  std::optional<std::string> machine_id;
  std::optional<std::string> type;
  size_t skip = 0;
  size_t top = 10000;
};

// ---- artifacts -------------------------------------------------------------------------

// A file a device uploaded for one of its own actions (investigation package, fetched file,
// command output), stored as a blob (server/blobs) under its SHA-256.
struct ActionArtifact {
  std::string action_id;
  std::string name;     // unique within the action, [A-Za-z0-9._-]
  std::string sha256;   // the blob
  uint64_t size = 0;
  UnixMillis created = 0;

  friend bool operator==(const ActionArtifact&, const ActionArtifact&) = default;
};

// ---- library ---------------------------------------------------------------------------

// A file of the live response library (scripts and tools PutFile/RunScript send to devices),
// stored as a blob (server/blobs) under its SHA-256. Callers validate the name
// (library_file_name.h); the store takes it as given.
struct LibraryFile {
  std::string name;     // unique; the key
  std::string sha256;   // the blob, lowercase hex
  uint64_t size = 0;
  std::string description;
  bool has_parameters = false;
  std::string parameters_description;
  std::string created_by;
  UnixMillis creation_time = 0;
  std::string last_updated_by;
  UnixMillis last_updated_time = 0;

  friend bool operator==(const LibraryFile&, const LibraryFile&) = default;
};

// ---- audit -----------------------------------------------------------------------------

struct AuditEntry {
  int64_t seq = 0;            // assigned by the store, increasing
  UnixMillis time = 0;
  std::string actor;          // token name, "agent:<device id>", or "system"
  std::string operation;      // "action.created", "action.transition", "device.offboarded", ...
  std::string target;         // the action or device id
  std::string comment;
  std::string details_json = "{}";

  friend bool operator==(const AuditEntry&, const AuditEntry&) = default;
};

struct AuditFilter {
  std::optional<std::string> target;
  size_t skip = 0;
  size_t top = 1000;
};

// ---- alerts ----------------------------------------------------------------------------

// Ordered by weight: ListAlerts orders "severity" by this order.
enum class AlertSeverity { kUnSpecified, kInformational, kLow, kMedium, kHigh };
enum class AlertStatus { kNew, kInProgress, kResolved };

struct AlertComment {
  std::string comment;
  std::string created_by;
  UnixMillis created = 0;

  friend bool operator==(const AlertComment&, const AlertComment&) = default;
};

// One alert in the Defender shape. Detections from one device with the same dedup_key update
// the alert while it is not Resolved and recently active (see server/alerts/).
struct Alert {
  std::string id;                  // UUID
  std::string title;
  std::string description;
  AlertSeverity severity = AlertSeverity::kMedium;
  AlertStatus status = AlertStatus::kNew;
  std::string classification;      // "" = not classified; else the MDE enum spelling
  std::string determination;       // "" = none
  std::string category;
  std::string detection_source;
  std::string detector_id;
  std::string threat_name;
  std::vector<std::string> mitre_techniques;
  std::string machine_id;
  std::string computer_dns_name;
  UnixMillis first_activity = 0;   // earliest detection time (agent clock)
  UnixMillis last_activity = 0;    // latest detection time (agent clock)
  UnixMillis created = 0;          // server clock
  UnixMillis last_update = 0;      // server clock
  std::optional<UnixMillis> resolved;
  std::string assigned_to;
  std::vector<AlertComment> comments;
  std::string evidence_json = "[]";  // JSON array of alertEvidence objects
  int64_t event_count = 1;         // detections merged into this alert
  std::string dedup_key;
  std::string action_id;           // the action the first detection was found during
  std::string incident_id;         // "" until correlation (a later issue) assigns one
  int64_t version = 0;             // assigned by the store; bumped by every write

  friend bool operator==(const Alert&, const Alert&) = default;
};

enum class AlertOrder { kLastActivity, kCreated, kSeverity };

struct AlertFilter {
  std::optional<AlertStatus> status;
  std::optional<AlertSeverity> severity;
  std::optional<std::string> machine_id;
  AlertOrder order_by = AlertOrder::kLastActivity;
  bool descending = true;  // ties: id ascending
  size_t skip = 0;
  size_t top = 10000;
};

// ---- file sightings ---------------------------------------------------------------------

// Where a file was seen. Agents report the hashes of executables they see run and of files
// they scan, so a fleet-wide action on a hash knows which devices to ask.
struct FileSighting {
  std::string device_id;
  std::string sha256;  // lowercase hex, never empty
  std::string sha1;    // lowercase hex or empty
  std::string md5;     // lowercase hex or empty
  std::string path;
  std::string source;  // "exec" | "scan"
  UnixMillis first_seen = 0;
  UnixMillis last_seen = 0;

  friend bool operator==(const FileSighting&, const FileSighting&) = default;
};

// ---- collected files and deep analyses ---------------------------------------------------

// A file the server holds because a device sent it for a CollectFile action: a blob
// (server/blobs) named by its SHA-256, with the other hashes it is known by.
struct SampleFile {
  std::string sha256;  // lowercase hex: the blob's name
  std::string sha1;    // lowercase hex
  std::string md5;     // lowercase hex
  uint64_t size = 0;
  std::string file_name;         // its name where it was first collected
  UnixMillis first_collected = 0;
  UnixMillis last_collected = 0;

  friend bool operator==(const SampleFile&, const SampleFile&) = default;
};

// One collection of a sample file: which action brought it from where.
struct FileCollection {
  std::string sha256;
  std::string action_id;  // the CollectFile action (unique)
  std::string machine_id;
  std::string path;       // on the device
  std::string requestor;
  UnixMillis collected = 0;

  friend bool operator==(const FileCollection&, const FileCollection&) = default;
};

// One detonation of a sample file in quell-sandbox, requested through the API.
struct DeepAnalysis {
  std::string id;          // UUID
  std::string sha256;      // the sample
  ActionStatus status = ActionStatus::kPending;  // Pending, InProgress, Succeeded, Failed
  std::string requestor;
  std::string comment;
  std::string collect_action_id;  // the CollectFile action it waits for, when it had to
  std::string stage;              // what it is doing now, for progress displays
  std::string verdict;            // "malicious" | "suspicious" | "noThreatsFound" once done
  std::string report_json;        // the sandbox's report once Succeeded, else ""
  std::string error;              // why it Failed
  UnixMillis requested = 0;
  UnixMillis updated = 0;

  friend bool operator==(const DeepAnalysis&, const DeepAnalysis&) = default;
};

// ---- indicators ------------------------------------------------------------------------

// Defender's indicator types and actions (REST spelling via the Name/Parse functions below).
enum class IndicatorType {
  kFileSha1, kFileSha256, kFileMd5, kCertificateThumbprint, kIpAddress, kDomainName, kUrl
};
enum class IndicatorAction { kAllowed, kAudit, kWarn, kBlock, kBlockAndRemediate };

// One indicator as stored. `value` is already normalized (server/indicators/), and
// (type, value) is unique: submitting an existing pair updates that indicator.
struct Indicator {
  std::string id;                     // UUID
  IndicatorType type = IndicatorType::kFileSha256;
  std::string value;
  IndicatorAction action = IndicatorAction::kBlock;
  AlertSeverity severity = AlertSeverity::kInformational;
  std::string title;
  std::string description;
  std::string recommended_actions;
  std::string application;
  std::optional<UnixMillis> expiration_time;  // nullopt: never expires
  bool generate_alert = false;
  std::vector<std::string> rbac_group_names;  // empty: applies to every device
  std::string created_by;
  std::string last_updated_by;
  UnixMillis creation_time = 0;
  UnixMillis last_update_time = 0;
  int64_t version = 0;  // the indicator version of its last change; assigned by the store

  friend bool operator==(const Indicator&, const Indicator&) = default;
};

struct IndicatorFilter {
  std::optional<IndicatorType> type;
  std::optional<IndicatorAction> action;
  std::optional<std::string> value;
  size_t skip = 0;
  size_t top = 10000;
};

// One entry of the change log: the indicator as it is now, or its removal.
struct IndicatorChange {
  int64_t version = 0;
  std::string id;
  std::optional<Indicator> indicator;  // nullopt: deleted at `version`

  friend bool operator==(const IndicatorChange&, const IndicatorChange&) = default;
};

struct IndicatorVersionInfo {
  int64_t current = 0;     // the version of the newest change; 0 before the first one
  // Deltas are exact only from a base >= delta_floor: tombstones of deletions at or below
  // it have been pruned, so older bases need a full snapshot.
  int64_t delta_floor = 0;
};

// What a device confirmed it has applied (IndicatorAck), and for which device group the
// server had computed it.
struct IndicatorAckRecord {
  int64_t version = 0;
  std::string group_name;
  UnixMillis time = 0;

  friend bool operator==(const IndicatorAckRecord&, const IndicatorAckRecord&) = default;
};

class Store {
 public:
  virtual ~Store() = default;

  // Devices.
  virtual Status CreateDevice(const Device& device) = 0;  // AlreadyExists on a duplicate id
  virtual Result<Device> GetDevice(const std::string& id) = 0;
  virtual Result<std::vector<Device>> ListDevices() = 0;  // sorted by id
  // Replaces every field of the device with the same id. NotFound if absent.
  virtual Status UpdateDevice(const Device& device) = 0;
  // Sets last_seen, never moving it backwards. NotFound if absent.
  virtual Status TouchDevice(const std::string& id, UnixMillis last_seen) = 0;
  // Many last-seen times in one transaction (presence flushes). Never moves a time
  // backwards; ids of devices that no longer exist are skipped, not errors.
  virtual Status TouchDevices(const std::vector<std::pair<std::string, UnixMillis>>& seen) = 0;

  // API tokens. Revoked tokens are still found, with revoked set: refusing them is the
  // caller's decision. AlreadyExists on a duplicate id or secret; NotFound if unknown.
  virtual Status CreateApiToken(const ApiToken& token) = 0;
  virtual Result<ApiToken> FindApiTokenBySecretHash(const std::string& secret_sha256) = 0;
  virtual Status RevokeApiToken(const std::string& id) = 0;

  // Enrollment tokens. Consume decrements uses_left atomically; NotFound if unknown,
  // PermissionDenied if used up or expired at `now` (now >= expires).
  virtual Status CreateEnrollmentToken(const EnrollmentToken& token) = 0;
  virtual Status ConsumeEnrollmentToken(const std::string& secret_sha256, UnixMillis now) = 0;

  // Actions. Insert: AlreadyExists on a duplicate id; NotFound if no device has machine_id.
  // `audit`, when not null, is appended in the same transaction: one commit per step.
  virtual Status InsertAction(const MachineAction& action, const AuditEntry* audit) = 0;
  Status InsertAction(const MachineAction& action) { return InsertAction(action, nullptr); }
  virtual Result<MachineAction> GetAction(const std::string& id) = 0;
  // Sorted by creation_time descending (newest first), then id.
  virtual Result<std::vector<MachineAction>> ListActions(const ActionFilter& filter) = 0;
  // Writes `action` only if the stored status still equals `expected`; FailedPrecondition
  // otherwise (someone else moved it first). NotFound if absent.
  // `audit`, when not null, is appended in the same transaction.
  virtual Status UpdateAction(const MachineAction& action, ActionStatus expected,
                              const AuditEntry* audit) = 0;
  Status UpdateAction(const MachineAction& action, ActionStatus expected) {
    return UpdateAction(action, expected, nullptr);
  }
  // Pending or InProgress actions of one device, oldest first.
  virtual Result<std::vector<MachineAction>> ListOpenActions(const std::string& machine_id) = 0;
  // How many actions are in each status (statuses with none are absent). For metrics.
  virtual Result<std::map<ActionStatus, int64_t>> CountActionsByStatus() = 0;
  // Pending or InProgress actions with expiration_time <= now, any device.
  virtual Result<std::vector<MachineAction>> ListExpiredActions(UnixMillis now) = 0;

  // Action artifacts. Records the artifact, replacing one of the same action and name (an
  // upload retried after a lost reply). NotFound when the action does not exist.
  virtual Status PutActionArtifact(const ActionArtifact& artifact) = 0;
  // NotFound when the action has no artifact of that name.
  virtual Result<ActionArtifact> GetActionArtifact(const std::string& action_id,
                                                   const std::string& name) = 0;
  // Ordered by name.
  virtual Result<std::vector<ActionArtifact>> ListActionArtifacts(
      const std::string& action_id) = 0;

  // Live response library. Put inserts the file or replaces every field of the one with the
  // same name (callers that keep created_by/creation_time copy them from the old row).
  // `audit`, when not null, is appended in the same transaction.
  virtual Status PutLibraryFile(const LibraryFile& file, const AuditEntry* audit) = 0;
  Status PutLibraryFile(const LibraryFile& file) { return PutLibraryFile(file, nullptr); }
  virtual Result<LibraryFile> GetLibraryFile(const std::string& name) = 0;  // NotFound if absent
  virtual Result<std::vector<LibraryFile>> ListLibraryFiles() = 0;          // ordered by name
  // NotFound, writing nothing (not even `audit`), if absent. The blob is not touched: a
  // running action may still name it by its hash.
  virtual Status DeleteLibraryFile(const std::string& name, const AuditEntry* audit) = 0;
  Status DeleteLibraryFile(const std::string& name) { return DeleteLibraryFile(name, nullptr); }

  // Audit log, append-only.
  virtual Status AppendAudit(const AuditEntry& entry) = 0;
  virtual Result<std::vector<AuditEntry>> ListAudit(const AuditFilter& filter) = 0;  // oldest first

  // Alerts. Writes are guarded by Alert::version: the store sets version to 1 on insert and
  // bumps it on every update; an update whose version no longer matches the stored one fails
  // with FailedPrecondition and writes nothing (someone else changed the alert first).
  virtual Result<Alert> GetAlert(const std::string& id) = 0;  // NotFound if absent
  virtual Result<std::vector<Alert>> ListAlerts(const AlertFilter& filter) = 0;
  // Writes every field of `alert` (version checked as above); NotFound if absent.
  virtual Status UpdateAlert(const Alert& alert) = 0;
  // The most recently active alert of `machine_id` with this dedup_key that is not Resolved
  // and whose last_activity >= active_since; nullopt if none.
  virtual Result<std::optional<Alert>> FindOpenAlert(const std::string& machine_id,
                                                     const std::string& dedup_key,
                                                     UnixMillis active_since) = 0;
  // In one transaction: remembers `detection_id` as ingested and inserts `alert` (create) or
  // updates it (version checked). AlreadyExists, writing nothing, if the detection id was
  // recorded before; otherwise the errors of insert/update, also writing nothing.
  virtual Status RecordDetection(const std::string& detection_id, const Alert& alert,
                                 bool create) = 0;
  virtual Result<bool> IsDetectionRecorded(const std::string& detection_id) = 0;

  // Upserts sightings in one transaction, keyed by (device_id, sha256, path): first_seen of
  // a known one is kept; last_seen, source and the other hashes are replaced.
  virtual Status RecordFileSightings(const std::vector<FileSighting>& sightings) = 0;
  // Sightings whose sha256, sha1 or md5 equals `hash` (lowercase hex), newest first.
  virtual Result<std::vector<FileSighting>> ListFileSightings(const std::string& hash,
                                                              size_t top) = 0;

  // Collected files. Records one collection and inserts its file, or updates the known one:
  // first_collected and file_name are kept, last_collected takes the later time, the hashes
  // and size are replaced. AlreadyExists when the action was recorded already.
  virtual Status RecordFileCollection(const SampleFile& file,
                                      const FileCollection& collection) = 0;
  // NotFound when the server holds no file with that SHA-256.
  virtual Result<SampleFile> GetSampleFile(const std::string& sha256) = 0;
  // Collections of the file, newest first.
  virtual Result<std::vector<FileCollection>> ListFileCollections(const std::string& sha256) = 0;

  // Deep analyses. Put inserts or replaces every field of the one with the same id.
  virtual Status PutDeepAnalysis(const DeepAnalysis& analysis) = 0;
  virtual Result<DeepAnalysis> GetDeepAnalysis(const std::string& id) = 0;  // NotFound if absent
  // The analyses of one sample, newest request first (ties: by id).
  virtual Result<std::vector<DeepAnalysis>> ListDeepAnalyses(const std::string& sha256) = 0;
  // Every analysis still Pending or InProgress, oldest request first (a restarted server
  // picks them up again).
  virtual Result<std::vector<DeepAnalysis>> ListUnfinishedDeepAnalyses() = 0;

  // Indicators. Every create, update and delete takes the next value of one global,
  // increasing indicator version, so "what changed since V" is a query on that version.
  //
  // Submit-or-update, all in one transaction: an indicator whose (type, value) exists
  // already updates that row (keeping its id, creation_time and created_by), otherwise it
  // is inserted with its id or, when that is empty, with the number of its version as id.
  // Each gets its own new version. For each one, a copy of `audit` with target = the
  // indicator id is appended. Returns the indicators as stored, in order.
  // InvalidArgument if two entries of the call share (type, value).
  virtual Result<std::vector<Indicator>> PutIndicators(const std::vector<Indicator>& indicators,
                                                       const AuditEntry& audit) = 0;
  virtual Result<Indicator> GetIndicator(const std::string& id) = 0;  // NotFound if absent
  // Sorted by id.
  virtual Result<std::vector<Indicator>> ListIndicators(const IndicatorFilter& filter) = 0;
  // Deletes those of `ids` that exist, in one transaction, each leaving a tombstone at a new
  // version and an audit entry (a copy of `audit`, target = id). Returns the deleted ids.
  virtual Result<std::vector<std::string>> DeleteIndicators(const std::vector<std::string>& ids,
                                                            const AuditEntry& audit) = 0;
  virtual Result<IndicatorVersionInfo> GetIndicatorVersion() = 0;
  // Changes with after < version <= upto, oldest first, at most `limit`. Tombstones only
  // when include_removed (a full snapshot lists from 0 without them).
  virtual Result<std::vector<IndicatorChange>> ListIndicatorChanges(int64_t after, int64_t upto,
                                                                    bool include_removed,
                                                                    size_t limit) = 0;
  // Forgets tombstones of deletions before `deleted_before`, raising delta_floor.
  virtual Status PruneIndicatorTombstones(UnixMillis deleted_before) = 0;
  // Sets only the device's rbac_group_name. NotFound if absent.
  virtual Status SetDeviceGroup(const std::string& device_id, const std::string& group_name) = 0;
  // Writes what the agent reports at Hello (computer_dns_name, os_*, kernel_version,
  // architecture, agent_version, ip_addresses, last_ip_address) and last_seen (never moving it
  // backwards); every field the server decides (rbac_group_name, isolation, offboarded,
  // cert_serial_hex, first_seen) is left as stored, so a group set while the agent connects
  // is never overwritten with the value read before it. NotFound if absent.
  virtual Status UpdateDeviceInventory(const Device& reported) = 0;
  // Records the device's IndicatorAck (replacing the previous one). NotFound if no device.
  virtual Status RecordIndicatorAck(const std::string& device_id,
                                    const IndicatorAckRecord& ack) = 0;
  virtual Result<std::optional<IndicatorAckRecord>> GetIndicatorAck(
      const std::string& device_id) = 0;
  // Every device's record, by device id (devices that never acked are absent).
  virtual Result<std::map<std::string, IndicatorAckRecord>> ListIndicatorAcks() = 0;
};

// Enum <-> the exact strings of the REST API (MDE spelling).
std::string_view ActionStatusName(ActionStatus s);
std::optional<ActionStatus> ParseActionStatus(std::string_view s);
std::string_view RoleName(Role r);
std::optional<Role> ParseRole(std::string_view s);
std::string_view IsolationStateName(IsolationState s);  // "NotIsolated", "Full", "Selective"
std::optional<IsolationState> ParseIsolationState(std::string_view s);
bool IsFinal(ActionStatus s);  // Succeeded, Failed, TimeOut, Cancelled
std::string_view AlertSeverityName(AlertSeverity s);  // "UnSpecified", "Informational", ...
std::optional<AlertSeverity> ParseAlertSeverity(std::string_view s);
std::string_view AlertStatusName(AlertStatus s);      // "New", "InProgress", "Resolved"
std::optional<AlertStatus> ParseAlertStatus(std::string_view s);
std::string_view IndicatorTypeName(IndicatorType t);      // "FileSha1", ..., "Url"
std::optional<IndicatorType> ParseIndicatorType(std::string_view s);
std::string_view IndicatorActionName(IndicatorAction a);  // "Allowed", ..., "BlockAndRemediate"
std::optional<IndicatorAction> ParseIndicatorAction(std::string_view s);

}  // namespace quell::server
