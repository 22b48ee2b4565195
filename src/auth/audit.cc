#include "auth/audit.h"
