// Where on Linux a write makes code run again later (at boot, login, on a schedule, in every
// process): the persistence locations the sandbox report calls out.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace quell::sandbox {

// The persistence category `path` belongs to, or nullopt:
//   "cron"            /etc/crontab, /etc/cron.* (cron.d, cron.daily, ..., cron.allow),
//                     /etc/anacrontab, /var/spool/cron/, /var/spool/anacron/, /var/spool/at/
//   "systemd"         /etc/systemd/{system,user}/, /{usr/,}lib/systemd/{system,user}/,
//                     /run/systemd/{system,user}/, ~/.config/systemd/user/,
//                     ~/.local/share/systemd/user/
//   "rc"              /etc/rc.local, /etc/init.d/, /etc/rc.d/, /etc/rc<X>.d/, /etc/inittab
//   "profile"         /etc/profile, /etc/profile.d/, /etc/bash.bashrc, /etc/bashrc,
//                     /etc/environment, /etc/zsh/, ~/.bashrc, ~/.profile, ~/.bash_profile,
//                     ~/.bash_login, ~/.bash_logout, ~/.zshrc, ~/.zprofile, ~/.zshenv, ~/.zlogin
//   "authorized_keys" ~/.ssh/authorized_keys* (authorized_keys2 too)
//   "ld.so.preload"   /etc/ld.so.preload
//   "udev"            /etc/udev/rules.d/, /{usr/,}lib/udev/rules.d/
//   "xdg-autostart"   /etc/xdg/autostart/, ~/.config/autostart/
//   "motd"            /etc/update-motd.d/
//   "sudoers"         /etc/sudoers, /etc/sudoers.d/
//   "accounts"        /etc/passwd, /etc/shadow, /etc/group, /etc/gshadow
//   "pam"             /etc/pam.d/
// "~" is any home: /root or /home/<user>. `path` is absolute; it is tidied lexically first
// ("//", "." and ".." segments), so "/etc/./cron.d/../cron.d/x" is still cron. A directory's
// own path counts (e.g. "/etc/cron.d"), a sibling with the same prefix does not
// ("/etc/profile.dx" is not "profile").
std::optional<std::string> PersistenceLocation(std::string_view path);

}  // namespace quell::sandbox
