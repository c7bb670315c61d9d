#include "cli/line_editor.h"

#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <filesystem>
#include <utility>

#include "common/files.h"

namespace quell::cli {

namespace {

bool IsContinuation(char c) { return (static_cast<unsigned char>(c) & 0xC0) == 0x80; }

constexpr char Ctrl(char c) { return static_cast<char>(c & 0x1f); }

}  // namespace

size_t DisplayWidth(const std::string& text) {
  size_t width = 0;
  for (char c : text) {
    if (!IsContinuation(c)) ++width;
  }
  return width;
}

// --- LineHistory ---

void LineHistory::Add(const std::string& line) {
  if (line.empty() || line.find('\n') != std::string::npos) return;
  if (!entries_.empty() && entries_.back() == line) return;
  entries_.push_back(line);
  if (entries_.size() > max_entries_) {
    entries_.erase(entries_.begin(),
                   entries_.begin() + static_cast<std::ptrdiff_t>(entries_.size() - max_entries_));
  }
}

Status LineHistory::Load(const std::string& path) {
  Result<std::string> text = ReadFile(path);
  if (!text.ok()) {
    if (text.status().code() == StatusCode::kNotFound) return Status::Ok();
    return text.status();
  }
  size_t start = 0;
  while (start < text->size()) {
    size_t end = text->find('\n', start);
    if (end == std::string::npos) end = text->size();
    std::string line = text->substr(start, end - start);
    if (!line.empty() && line.back() == '\r') line.pop_back();
    Add(line);
    start = end + 1;
  }
  return Status::Ok();
}

Status LineHistory::Save(const std::string& path) const {
  const std::string parent = std::filesystem::path(path).parent_path().string();
  if (!parent.empty()) QUELL_RETURN_IF_ERROR(MakeDirs(parent, 0700));
  std::string text;
  for (const std::string& line : entries_) text += line + "\n";
  return WriteFileAtomic(path, text, 0600);
}

std::string DefaultHistoryPath() {
  const char* state = std::getenv("XDG_STATE_HOME");
  if (state != nullptr && state[0] == '/') return std::string(state) + "/quell/live_history";
  const char* home = std::getenv("HOME");
  if (home != nullptr && home[0] != '\0') return std::string(home) + "/.local/state/quell/live_history";
  return "";
}

// --- LineEditor ---

LineEditor::Event LineEditor::Feed(char byte) {
  if (!escape_.empty()) return FeedEscape(byte);
  switch (byte) {
    case '\r':
    case '\n':
      return Event::kSubmit;
    case '\x1b':
      escape_ = "\x1b";
      return Event::kNone;
    case Ctrl('A'):
      cursor_ = 0;
      return Event::kNone;
    case Ctrl('E'):
      cursor_ = buffer_.size();
      return Event::kNone;
    case Ctrl('B'):
      MoveLeft();
      return Event::kNone;
    case Ctrl('F'):
      MoveRight();
      return Event::kNone;
    case Ctrl('C'):
      Clear();
      return Event::kInterrupt;
    case Ctrl('D'):
      if (buffer_.empty()) return Event::kEof;
      DeleteAt();
      return Event::kNone;
    case Ctrl('H'):
    case '\x7f':
      DeleteBefore();
      return Event::kNone;
    case Ctrl('K'):
      buffer_.erase(cursor_);
      return Event::kNone;
    case Ctrl('U'):
      buffer_.erase(0, cursor_);
      cursor_ = 0;
      return Event::kNone;
    case Ctrl('W'):
      DeleteWordBefore();
      return Event::kNone;
    case Ctrl('P'):
      HistoryUp();
      return Event::kNone;
    case Ctrl('N'):
      HistoryDown();
      return Event::kNone;
    default:
      break;
  }
  if (static_cast<unsigned char>(byte) < 0x20) return Event::kNone;  // other controls: ignored
  buffer_.insert(buffer_.begin() + static_cast<std::ptrdiff_t>(cursor_), byte);
  ++cursor_;
  return Event::kNone;
}

// Sequences: ESC [ A|B|C|D|H|F, ESC O A..D|H|F, ESC [ <digits> ~ (1/7 Home, 4/8 End,
// 3 Delete), ESC [ 1 ; <mod> <letter> (modified arrows, treated as plain ones). Anything else
// is dropped once it ends.
LineEditor::Event LineEditor::FeedEscape(char byte) {
  escape_ += byte;
  if (escape_.size() == 2) {
    if (byte == '[' || byte == 'O') return Event::kNone;
    escape_.clear();  // Alt+key: ignored
    return Event::kNone;
  }
  if ((byte >= '0' && byte <= '9') || byte == ';') {
    if (escape_.size() > 16) escape_.clear();  // runaway sequence
    return Event::kNone;
  }
  const std::string params = escape_.substr(2, escape_.size() - 3);
  escape_.clear();
  switch (byte) {
    case 'A': HistoryUp(); break;
    case 'B': HistoryDown(); break;
    case 'C': MoveRight(); break;
    case 'D': MoveLeft(); break;
    case 'H': cursor_ = 0; break;
    case 'F': cursor_ = buffer_.size(); break;
    case '~':
      if (params == "1" || params == "7") cursor_ = 0;
      if (params == "4" || params == "8") cursor_ = buffer_.size();
      if (params == "3") DeleteAt();
      break;
    default: break;
  }
  return Event::kNone;
}

void LineEditor::MoveLeft() {
  while (cursor_ > 0) {
    --cursor_;
    if (!IsContinuation(buffer_[cursor_])) break;
  }
}

void LineEditor::MoveRight() {
  if (cursor_ >= buffer_.size()) return;
  ++cursor_;
  while (cursor_ < buffer_.size() && IsContinuation(buffer_[cursor_])) ++cursor_;
}

void LineEditor::DeleteBefore() {
  const size_t end = cursor_;
  MoveLeft();
  buffer_.erase(cursor_, end - cursor_);
}

void LineEditor::DeleteAt() {
  const size_t start = cursor_;
  MoveRight();
  buffer_.erase(start, cursor_ - start);
  cursor_ = start;
}

// As in shells: blanks before the cursor, then the word before them.
void LineEditor::DeleteWordBefore() {
  size_t start = cursor_;
  while (start > 0 && buffer_[start - 1] == ' ') --start;
  while (start > 0 && buffer_[start - 1] != ' ') --start;
  buffer_.erase(start, cursor_ - start);
  cursor_ = start;
}

void LineEditor::HistoryUp() {
  const auto& entries = history_.entries();
  size_t index = history_index_.value_or(entries.size());
  if (index == 0) return;
  if (!history_index_) saved_line_ = buffer_;
  history_index_ = index - 1;
  buffer_ = entries[*history_index_];
  cursor_ = buffer_.size();
}

void LineEditor::HistoryDown() {
  if (!history_index_) return;
  const auto& entries = history_.entries();
  size_t index = *history_index_ + 1;
  if (index >= entries.size()) {
    history_index_.reset();
    buffer_ = saved_line_;
  } else {
    history_index_ = index;
    buffer_ = entries[index];
  }
  cursor_ = buffer_.size();
}

std::string LineEditor::TakeLine() {
  std::string line = std::move(buffer_);
  Clear();
  history_.Add(line);
  return line;
}

void LineEditor::Clear() {
  buffer_.clear();
  cursor_ = 0;
  escape_.clear();
  history_index_.reset();
  saved_line_.clear();
}

std::string LineEditor::Render(const std::string& prompt, size_t columns) const {
  // Byte offsets of the characters of the line, and the character the cursor is on.
  std::vector<size_t> starts;
  for (size_t i = 0; i < buffer_.size(); ++i) {
    if (!IsContinuation(buffer_[i])) starts.push_back(i);
  }
  starts.push_back(buffer_.size());
  const size_t chars = starts.size() - 1;
  const size_t at = DisplayWidth(buffer_.substr(0, cursor_));
  // The last column stays free: a character there would make some terminals wrap.
  const size_t prompt_width = DisplayWidth(prompt);
  const size_t room = columns > prompt_width + 2 ? columns - prompt_width - 1 : 0;
  size_t first = 0, last = chars;  // the characters shown
  if (room > 0 && chars + 1 > room) {
    first = at < room ? 0 : at - room + 1;
    last = std::min(chars, first + room);
  }
  std::string out = "\r" + prompt + buffer_.substr(starts[first], starts[last] - starts[first]) +
                    "\x1b[K";
  const size_t back = last - at;
  if (back > 0) out += "\x1b[" + std::to_string(back) + "D";
  return out;
}

// --- RawTerminal ---

Result<RawTerminal> RawTerminal::Enter(int fd) {
  termios saved{};
  if (::tcgetattr(fd, &saved) != 0) return ErrnoStatus("tcgetattr");
  termios raw = saved;
  raw.c_iflag &= ~static_cast<tcflag_t>(BRKINT | ICRNL | INPCK | ISTRIP | IXON);
  raw.c_lflag &= ~static_cast<tcflag_t>(ECHO | ICANON | IEXTEN | ISIG);
  raw.c_cflag |= CS8;
  raw.c_cc[VMIN] = 1;
  raw.c_cc[VTIME] = 0;
  // TCSANOW, not TCSAFLUSH: keys typed before the prompt appeared are kept.
  if (::tcsetattr(fd, TCSANOW, &raw) != 0) return ErrnoStatus("tcsetattr");
  return RawTerminal(fd, saved);
}

RawTerminal::RawTerminal(RawTerminal&& other) noexcept
    : fd_(std::exchange(other.fd_, -1)), saved_(other.saved_) {}

RawTerminal::~RawTerminal() {
  if (fd_ >= 0) ::tcsetattr(fd_, TCSADRAIN, &saved_);
}

}  // namespace quell::cli
