"""Units of the task API, parsed here so that mistakes are reported before anything is sent.

- memory: GPU memory **per GPU**. A number is MiB (``1024`` = 1 GiB); a string takes a unit:
  ``'512MiB'``, ``'16GiB'``, ``'16G'``, ``'1TiB'`` (binary units; ``GB`` is read as ``GiB``, as the CLI does).
- runtime: the wall-clock limit. A number is **hours** (``24`` = one day, ``0.5`` = 30 minutes); a string takes a
  unit: ``'90s'``, ``'30m'``, ``'2h'``, ``'1d'``, ``'1h30m'``; a :class:`datetime.timedelta` is taken as is.
- gpus: whole GPUs (``2``) or a share of one GPU (``0.25``, at least ``0.001``).
"""
from __future__ import annotations

import datetime
import re
from decimal import Decimal, InvalidOperation
from typing import Union

from .errors import InvalidRequest

Number = Union[int, float]
MemorySpec = Union[int, float, str]
RuntimeSpec = Union[int, float, str, datetime.timedelta]
GpuSpec = Union[int, float, str]

_MEMORY_UNITS = {
    "": 1, "m": 1, "mi": 1, "mib": 1, "mb": 1,
    "g": 1024, "gi": 1024, "gib": 1024, "gb": 1024,
    "t": 1024 * 1024, "ti": 1024 * 1024, "tib": 1024 * 1024, "tb": 1024 * 1024,
}
_DURATION_UNITS = {
    "": 1, "s": 1, "sec": 1, "secs": 1, "second": 1, "seconds": 1,
    "m": 60, "min": 60, "mins": 60, "minute": 60, "minutes": 60,
    "h": 3600, "hr": 3600, "hrs": 3600, "hour": 3600, "hours": 3600,
    "d": 86400, "day": 86400, "days": 86400,
}
_MAX_MEMORY_MIB = 16 * 1024 * 1024  # 16 TiB, the server's limit
_MAX_RUNTIME_S = 10 * 365 * 86400  # 10 years, the server's limit


def _is_number(v: object) -> bool:
    return isinstance(v, (int, float, Decimal)) and not isinstance(v, bool)


def memory_mib(value: MemorySpec) -> int:
    """GPU memory per GPU in MiB: ``1024`` -> 1024, ``'16GiB'`` -> 16384, ``'1.5GiB'`` -> 1536."""
    if _is_number(value):
        amount = Decimal(str(value))
        unit = ""
        text = str(value)
    elif isinstance(value, str):
        text = value.strip()
        m = re.fullmatch(r"(\d+(?:\.\d+)?)\s*([A-Za-z]*)", text)
        if not m:
            raise InvalidRequest(f"memory {value!r} is not a size (examples: 1024 (MiB), '16GiB', '512MiB')")
        amount = Decimal(m.group(1))
        unit = m.group(2).lower()
    else:
        raise InvalidRequest(f"memory must be MiB as a number or a string such as '16GiB', not {type(value).__name__}")
    if unit not in _MEMORY_UNITS:
        raise InvalidRequest(f"memory {value!r} has unknown unit {unit!r} (use MiB, GiB or TiB)")
    if amount < 0:
        raise InvalidRequest(f"memory {value!r} is negative")
    mib = amount * _MEMORY_UNITS[unit]
    if mib != mib.to_integral_value():
        raise InvalidRequest(f"memory {text!r} is not a whole number of MiB")
    if mib > _MAX_MEMORY_MIB:
        raise InvalidRequest(f"memory {text!r} is more than 16 TiB per GPU")
    return int(mib)


def runtime_seconds(value: RuntimeSpec) -> int:
    """Wall-clock limit in seconds: ``24`` (hours) -> 86400, ``'2h'`` -> 7200, ``'1h30m'`` -> 5400."""
    if isinstance(value, datetime.timedelta):
        seconds = Decimal(str(value.total_seconds()))
        text = str(value)
    elif _is_number(value):
        try:
            seconds = Decimal(str(value)) * 3600
        except InvalidOperation:
            raise InvalidRequest(f"runtime {value!r} is not a number of hours") from None
        text = f"{value} h"
    elif isinstance(value, str):
        text = value.strip().lower()
        if not text:
            raise InvalidRequest("runtime is empty (examples: 24 (hours), '2h', '30m', '1h30m')")
        parts = re.findall(r"\s*(\d+(?:\.\d+)?)\s*([a-z]*)", text)
        if not parts or "".join(re.findall(r"\s*\d+(?:\.\d+)?\s*[a-z]*", text)) != text:
            raise InvalidRequest(f"runtime {value!r} is not a duration (examples: 24 (hours), '2h', '30m', '1h30m')")
        seconds = Decimal(0)
        for number, unit in parts:
            if unit not in _DURATION_UNITS:
                raise InvalidRequest(f"runtime {value!r} has unknown unit {unit!r} (use s, m, h or d)")
            seconds += Decimal(number) * _DURATION_UNITS[unit]
    else:
        raise InvalidRequest(f"runtime must be hours as a number or a string such as '2h', not {type(value).__name__}")
    if seconds < 0:
        raise InvalidRequest(f"runtime {text!r} is negative")
    if seconds != seconds.to_integral_value():
        raise InvalidRequest(f"runtime {text!r} is not a whole number of seconds")
    if seconds > _MAX_RUNTIME_S:
        raise InvalidRequest(f"runtime {text!r} is longer than 10 years")
    return int(seconds)


def gpus_value(value: GpuSpec) -> Union[int, str]:
    """The ``gpus`` field as the API takes it: an integer count, or a decimal string for a share (``'0.25'``)."""
    if isinstance(value, str):
        text = value.strip()
        try:
            d = Decimal(text)
        except InvalidOperation:
            raise InvalidRequest(f"gpus {value!r} is not a number (examples: 1, 4, 0.25)") from None
    elif _is_number(value):
        d = Decimal(str(value))
    else:
        raise InvalidRequest(f"gpus must be a number such as 2 or 0.25, not {type(value).__name__}")
    if d <= 0:
        raise InvalidRequest(
            f"gpus must be more than 0 (got {value!r}): every FastGPU job runs on GPUs; the smallest share is 0.001"
        )
    if d == d.to_integral_value():
        return int(d)
    if d > 1:
        raise InvalidRequest(f"gpus {value!r}: above 1, GPUs must be whole (fractions are for a single GPU)")
    if d != d.quantize(Decimal("0.001")):
        raise InvalidRequest(f"gpus {value!r}: a GPU share has at most 3 decimals (0.001 steps)")
    return format(d.normalize(), "f")
