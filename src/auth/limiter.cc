#include "auth/limiter.h"
