// A small line editor for `quell live`: key handling over raw terminal bytes, history, and
// the terminal's raw mode. The key handling is pure (bytes in, buffer/cursor/events out) so
// it is tested without a terminal; the caller owns reading stdin and drawing.
#pragma once

#include <termios.h>

#include <cstddef>
#include <optional>
#include <string>
#include <vector>

#include "common/status.h"

namespace quell::cli {

// Entered lines, oldest first. Empty lines and a repeat of the newest entry are not added.
class LineHistory {
 public:
  explicit LineHistory(size_t max_entries = 1000) : max_entries_(max_entries) {}

  void Add(const std::string& line);
  const std::vector<std::string>& entries() const { return entries_; }

  // Reads one entry per line; a missing file is an empty history. Keeps the newest
  // max_entries.
  Status Load(const std::string& path);
  // Writes the entries (mode 0600, via a temporary file and rename), creating the parent
  // directory (0700) when missing. History can hold paths and names worth keeping private.
  Status Save(const std::string& path) const;

 private:
  size_t max_entries_;
  std::vector<std::string> entries_;
};

// The default history file: $XDG_STATE_HOME/quell/live_history, else
// $HOME/.local/state/quell/live_history; "" when neither is set.
std::string DefaultHistoryPath();

class LineEditor {
 public:
  enum class Event {
    kNone,       // the byte was consumed (maybe changing the line); redraw
    kSubmit,     // Enter: take the line with TakeLine()
    kEof,        // Ctrl-D on an empty line
    kInterrupt,  // Ctrl-C: the line has been cleared
  };

  explicit LineEditor(LineHistory& history) : history_(history) {}

  // Feeds one byte from the terminal. Escape sequences (arrows, Home/End/Delete) span
  // several bytes; their first bytes return kNone.
  Event Feed(char byte);

  // The entered line, added to the history; the editor starts a fresh line.
  std::string TakeLine();
  // Empties the line (and leaves history browsing).
  void Clear();

  const std::string& buffer() const { return buffer_; }
  size_t cursor() const { return cursor_; }  // a byte offset, at a character boundary

  // The bytes that redraw `prompt` and the line on the current terminal row, leaving the
  // terminal cursor at the editing position. With `columns` (the terminal's width; 0 =
  // unknown) a line too long for the row scrolls sideways instead of wrapping, which a
  // one-row redraw could not undo: the part around the cursor is shown.
  std::string Render(const std::string& prompt, size_t columns = 0) const;

 private:
  Event FeedEscape(char byte);
  void MoveLeft();
  void MoveRight();
  void DeleteBefore();
  void DeleteAt();
  void DeleteWordBefore();
  void HistoryUp();
  void HistoryDown();

  LineHistory& history_;
  std::string buffer_;
  size_t cursor_ = 0;
  std::string escape_;  // the escape sequence read so far ("" when none)
  // Browsing: index into history_.entries() (size() = the line being edited).
  std::optional<size_t> history_index_;
  std::string saved_line_;  // the edited line while browsing
};

// Puts a terminal into raw mode (no echo, no line buffering, no signals from Ctrl-C/Ctrl-Z,
// output processing kept so "\n" still starts a new line) and restores the saved settings
// when destroyed, so every exit path leaves the terminal usable.
class RawTerminal {
 public:
  static Result<RawTerminal> Enter(int fd);
  RawTerminal(RawTerminal&& other) noexcept;
  RawTerminal& operator=(RawTerminal&&) = delete;
  RawTerminal(const RawTerminal&) = delete;
  ~RawTerminal();

 private:
  RawTerminal(int fd, const termios& saved) : fd_(fd), saved_(saved) {}
  int fd_ = -1;
  termios saved_{};
};

// The display width of a UTF-8 string, counting code points (not continuation bytes).
size_t DisplayWidth(const std::string& text);

}  // namespace quell::cli
