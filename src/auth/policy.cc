#include "auth/policy.h"
