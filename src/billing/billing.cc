#include "billing/billing.h"
