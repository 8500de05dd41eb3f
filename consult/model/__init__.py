"""Shared value types: imported by every layer, importing none of them."""

from consult.model.clock import Clock, FixedClock, SystemClock, iso
from consult.model.principal import Principal

__all__ = ["Clock", "FixedClock", "Principal", "SystemClock", "iso"]
