#include "auth/secrets.h"
