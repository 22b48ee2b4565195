#include "auth/accounts.h"
