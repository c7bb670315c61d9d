// LD_PRELOAD shim for fapolicyd, used only by bench/exec/run.sh: this machine (a container)
// lacks CAP_SYS_RESOURCE in its bounding set, and fapolicyd asks libcap-ng to keep that
// capability when it switches to its own uid, which then fails ("Cannot change to uid").
// Dropping CAP_SYS_RESOURCE from the requested set just before the switch lets fapolicyd run
// with every other capability it asks for; its access decisions do not use CAP_SYS_RESOURCE.
#define _GNU_SOURCE
#include <dlfcn.h>

// From <cap-ng.h> (not installed here): capng_act_t CAPNG_DROP = 0; capng_type_t flags.
enum { kCapngDrop = 0, kCapngEffective = 1, kCapngPermitted = 2, kCapngInheritable = 4 };
enum { kCapSysResource = 24 };
int capng_update(int action, int type, unsigned int capability);

int capng_change_id(int uid, int gid, int flag) {
  int (*real)(int, int, int) = (int (*)(int, int, int))dlsym(RTLD_NEXT, "capng_change_id");
  if (real == 0) return -1;
  capng_update(kCapngDrop, kCapngEffective | kCapngPermitted | kCapngInheritable, kCapSysResource);
  return real(uid, gid, flag);
}
